// matvec's result: stored.

fn finish(i: u32, v: f32) {
    Y[i] = v;
}

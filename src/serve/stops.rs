//! A request's `stop` strings over streamed text: text is sent as soon as it cannot be the
//! start of a stop string, and never past one.

/// The generated text of one sequence and how much of it has been sent.
#[derive(Default)]
pub struct StopScan {
    stops: Vec<String>,
    text: String,
    sent: usize,
    stopped: bool,
}

impl StopScan {
    pub fn new(stops: Vec<String>) -> Self {
        StopScan { stops, ..Default::default() }
    }

    /// Add `piece`; the text that can be sent now, and whether a stop string was met (the
    /// text ends before it).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        let from = self.sent;
        self.text.push_str(piece);
        // A stop string may begin in text already held back, never in text already sent.
        let hit = self.stops.iter().filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i)).min();
        if let Some(end) = hit {
            self.sent = self.text.len();
            self.stopped = true;
            return (self.text[from..end].to_string(), true);
        }
        let keep = self.held_back();
        let end = self.text.len() - keep;
        self.sent = end;
        (self.text[from..end].to_string(), false)
    }

    /// Whether a stop string was met.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Whatever is held back, at the end of the sequence.
    pub fn finish(&mut self) -> String {
        let rest = self.text[self.sent..].to_string();
        self.sent = self.text.len();
        rest
    }

    /// Bytes at the end of the text that begin some stop string (on a char boundary).
    fn held_back(&self) -> usize {
        let unsent = &self.text[self.sent..];
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in unsent.char_indices() {
                let tail = &unsent[i..];
                if s.starts_with(tail) {
                    keep = keep.max(tail.len());
                    break;
                }
            }
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_held_only_while_it_could_start_a_stop() {
        let mut s = StopScan::new(vec!["END".into(), "\n\n".into()]);
        assert_eq!(s.push("Hello E"), ("Hello ".to_string(), false));
        assert_eq!(s.push("x"), ("Ex".to_string(), false));
        assert_eq!(s.push(" wörld EN"), (" wörld ".to_string(), false));
        assert_eq!(s.push("D and more"), (String::new(), true));
    }

    #[test]
    fn the_earliest_stop_wins_and_finish_flushes() {
        let mut s = StopScan::new(vec!["b".into(), "a".into()]);
        assert_eq!(s.push("xxab"), ("xx".to_string(), true));
        let mut s = StopScan::new(vec!["zz".into()]);
        assert_eq!(s.push("abz"), ("ab".to_string(), false));
        assert_eq!(s.finish(), "z");
        let mut none = StopScan::new(Vec::new());
        assert_eq!(none.push("all of it"), ("all of it".to_string(), false));
    }
}

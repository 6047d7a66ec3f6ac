#!/usr/bin/env python3
"""Throughput of a running `lanterna serve` for one request alone and for N at once.

Sends N different greedy chat requests one after another, then all N at once, and prints
each phase's generated tokens per second (from the answers' usage) and the ratio, and
whether every answer at once equals its answer alone. Standard library only.

    lanterna serve -m smollm2 --parallel 8 --port 8080 &
    python3 scripts/serve-bench.py http://127.0.0.1:8080 -n 8 --max-tokens 32
"""
import argparse
import json
import threading
import time
import urllib.request

PROMPTS = [
    "Write a short story about a lighthouse keeper.", "Explain how a bicycle works.",
    "Describe the water cycle.", "What makes a good cup of tea?", "Tell me about the moon.",
    "How do bees make honey?", "Why is the sea salty?", "Describe a busy market in the morning.",
    "What do cats like?", "How does a train stay on its rails?", "Describe autumn.",
    "What is a volcano?", "How do birds fly?", "Tell me about the desert.", "What is rain?",
    "Describe a thunderstorm.",
]


def ask(base, prompt, max_tokens):
    body = {"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": max_tokens}
    req = urllib.request.Request(base + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r:
        v = json.load(r)
    return v["choices"][0]["message"]["content"], v["usage"]["completion_tokens"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    a = ap.parse_args()
    prompts = PROMPTS[:a.n]
    ask(a.base, "Hello", 2)  # warm-up: pipelines compiled, caches touched
    t = time.time()
    alone = [ask(a.base, p, a.max_tokens) for p in prompts]
    t_alone = time.time() - t
    results = [None] * len(prompts)

    def one(i):
        results[i] = ask(a.base, prompts[i], a.max_tokens)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    t = time.time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t_all = time.time() - t
    r_alone = sum(n for _, n in alone) / t_alone
    r_all = sum(n for _, n in results) / t_all
    same = sum(x[0] == y[0] for x, y in zip(alone, results))
    print(f"alone: {sum(n for _, n in alone)} tokens in {t_alone:.1f} s = {r_alone:.2f} tokens/s (one request at a time)")
    print(f"at once: {sum(n for _, n in results)} tokens in {t_all:.1f} s = {r_all:.2f} tokens/s ({len(prompts)} requests)")
    print(f"ratio {r_all / r_alone:.2f}x; {same}/{len(prompts)} answers at once equal to alone")


if __name__ == "__main__":
    main()

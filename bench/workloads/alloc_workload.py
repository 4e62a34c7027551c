#!/usr/bin/env python3
"""An allocation-heavy Python program for timing heap tracers (memdx trace, heaptrack) against a
native run of the same interpreter. Deterministic: a seeded random.Random, no hash() or set
order in the checksum, so every run does the same work and prints the same checksum.

    python3 alloc_workload.py [SCALE=1]

The mix: dicts of str -> list with inserts and deletes, lists grown by append, strings built by
join, format and concatenation, instances of small classes (with and without __slots__) linked
into a binary search tree and into per-key histories, and bytes/bytearray buffers.

What a malloc tracer sees of it: CPython hands objects of up to 512 bytes to its own small-object
allocator (pymalloc), which carves them out of 1 MiB arenas taken with mmap, so most Python
objects never reach malloc. This workload therefore makes many objects that do: strings of more
than ~460 characters, lists past 64 elements (each growth a realloc), dicts past ~21 keys,
bytes and bytearrays over 512 bytes. At SCALE 1 heaptrack counts 1.48 million calls to
allocation functions with the default allocator, of which 3,900 are the interpreter's start-up
and this module's set-up (see bench/README.md, "Tracer workloads"); with PYTHONMALLOC=malloc,
which sends every object to malloc, it counts 13.6 million.
"""
import random
import sys
import zlib

WORDS = ("id", "user", "session", "configuration", "a", "payload", "index", "tokenizer",
         "synchronised", "x", "resident", "allocation", "page", "mapping", "eviction", "fox")
ROUNDS_AT_SCALE_1 = 3600
TABLE_KEYS = 3000
POOL_SIZE = 100_000


class Event:
    """A plain class: each instance has its own __dict__."""

    def __init__(self, kind, payload, weight):
        self.kind = kind
        self.payload = payload
        self.weight = weight


class Node:
    """A binary search tree node; __slots__, so no per-instance dict."""

    __slots__ = ("key", "value", "left", "right")

    def __init__(self, key, value):
        self.key = key
        self.value = value
        self.left = None
        self.right = None


class Tree:
    """An unbalanced binary search tree: insert, lookup and a recursive walk of varying depth."""

    def __init__(self):
        self.root = None
        self.size = 0

    def insert(self, key, value):
        if self.root is None:
            self.root = Node(key, value)
            self.size += 1
            return
        node = self.root
        while True:
            if key == node.key:
                node.value = value
                return
            side = "left" if key < node.key else "right"
            child = getattr(node, side)
            if child is None:
                setattr(node, side, Node(key, value))
                self.size += 1
                return
            node = child

    def total(self, node=None, depth=0):
        """Sum of value lengths, recursively (Python frames of depth up to the tree's height)."""
        node = self.root if node is None and depth == 0 else node
        if node is None:
            return 0
        return len(node.value) + self.total(node.left, depth + 1) + self.total(node.right, depth + 1)


class Workload:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.random = self.rng.random  # C-level and stable across versions, unlike randrange's cost
        self.checksum = 0
        self.table = {}  # str -> list of Event
        self.recent = [None] * 256  # ring of long strings
        self.recent_next = 0
        # A pool of words and numbers to slice from: building text word by word in Python would
        # cost far more interpreter time per allocation than real text processing does.
        self.word_pool = [WORDS[self.below(len(WORDS))] for _ in range(POOL_SIZE)]
        self.number_pool = [self.below(100_000) for _ in range(POOL_SIZE)]

    def below(self, n):
        return int(self.random() * n)

    def mix(self, value):
        self.checksum = (self.checksum * 1_000_003 + value) & 0xFFFF_FFFF_FFFF_FFFF

    def pool_slice(self, pool, lo, hi):
        count = lo + self.below(hi - lo)
        start = self.below(POOL_SIZE - count)
        return pool[start:start + count]

    def text(self):
        """A line of 60 to 260 words, then slices, case changes, a replace, a concatenation and a
        split: text processing on strings mostly past pymalloc's 512 bytes."""
        text = " ".join(self.pool_slice(self.word_pool, 60, 260))
        pieces = (text.upper(), text[len(text) // 3:], text.replace("a", "4"), text + "|" + text[:600])
        fields = text.split()
        kept = pieces[self.below(len(pieces))]
        self.recent[self.recent_next] = kept
        self.recent_next = (self.recent_next + 1) % len(self.recent)
        self.mix(zlib.crc32(kept.encode()) + len(fields))

    def update_table(self):
        """Dict of key -> list of Event: lists grow by append well past 64 elements (each growth
        a realloc), keys come and go, the table stays under TABLE_KEYS."""
        key = f"key/{self.below(TABLE_KEYS * 2)}/{WORDS[self.below(len(WORDS))]}"
        history = self.table.get(key)
        if history is not None and (self.below(4) == 0 or len(self.table) > TABLE_KEYS):
            self.mix(len(history))
            del self.table[key]
            return
        if history is None:
            history = self.table[key] = []
        words = self.pool_slice(self.word_pool, 5, 25)
        for index, word in enumerate(words):
            history.append(Event(word, index, len(history)))

    def build_records(self):
        """Dicts of 20 to 90 keys (past pymalloc's 512 bytes from about 22 keys), a filtered
        copy, and the sorted list of their items."""
        keys = self.pool_slice(self.word_pool, 20, 90)
        record = dict(zip((f"{word}_{i}" for i, word in enumerate(keys)), self.number_pool))
        large = {k: v for k, v in record.items() if v > 20_000}
        items = sorted(record.items())
        self.mix(len(items) + len(large) + items[0][1])

    def lists(self):
        """Slices, sorted copies and concatenations of lists of 70 to 300 numbers."""
        numbers = self.pool_slice(self.number_pool, 70, 300)
        ordered = sorted(numbers)
        both = numbers + ordered[: len(ordered) // 2]
        both.reverse()
        self.mix(ordered[len(ordered) // 2] + len(both))

    def grow_tree(self, tree):
        """A tree of 500 to 1,500 nodes with string values, then walked recursively."""
        for key, word in zip(self.pool_slice(self.number_pool, 500, 1500), self.word_pool):
            tree.insert(key, word * (1 + key % 7))
        self.mix(tree.total() + tree.size)

    def buffers(self):
        """bytes of 200 to 2,000 bytes and a bytearray grown by += (a realloc past 512 bytes)."""
        buf = bytearray()
        for _ in range(4 + self.below(20)):
            buf += bytes(200 + self.below(1800))
        self.mix(len(buf) + len(bytes(buf)))

    def run(self, rounds):
        for _ in range(rounds):
            for _ in range(10):
                self.text()
            for _ in range(3):
                self.update_table()
            for _ in range(6):
                self.build_records()
            for _ in range(4):
                self.lists()
            for _ in range(10):
                self.buffers()
            if self.below(100) == 0:
                self.grow_tree(Tree())
        self.mix(len(self.table))
        self.mix(sum(len(history) for history in self.table.values()))


def main(argv):
    try:
        scale = float(argv[1]) if len(argv) > 1 else 1.0
    except ValueError:
        scale = -1.0
    if len(argv) > 2 or not 0 < scale <= 1000:
        print(f"usage: {argv[0]} [SCALE]   SCALE in (0, 1000], default 1", file=sys.stderr)
        return 2
    rounds = max(1, int(ROUNDS_AT_SCALE_1 * scale))
    workload = Workload(seed=0x5EED)
    workload.run(rounds)
    print(f"rounds {rounds} (scale {scale:g})")
    print(f"checksum {workload.checksum:016x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

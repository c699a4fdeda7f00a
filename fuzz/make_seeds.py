#!/usr/bin/env python3
"""Writes the small seed corpus for gguf_reader_fuzz into fuzz/corpus/.

Seeds are tiny on purpose (libFuzzer mutates small inputs much faster): every GGUF
version (1, 2, 3), every metadata value type, nested arrays, a custom alignment, and a
few tensors of plain and block types. Written straight from the GGUF specification,
independently of our own writer.
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
       BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


class Gguf:
    def __init__(self, version=3, alignment=32):
        self.version, self.alignment = version, alignment
        self.kv, self.tensors = [], []

    def count(self, n):
        return struct.pack("<I" if self.version == 1 else "<Q", n)

    def string(self, s):
        b = s.encode()
        return self.count(len(b)) + b

    def value(self, t, v):
        if t == STR:
            return self.string(v)
        if t == ARR:
            et, items = v
            return struct.pack("<I", et) + self.count(len(items)) + b"".join(
                self.value(et, x) for x in items)
        return struct.pack(FMT[t], v)

    def add(self, key, t, v):
        self.kv.append((key, t, v))

    def tensor(self, name, type_id, shape, nbytes):
        self.tensors.append((name, type_id, shape, bytes((i * 7 + 3) & 0xFF for i in range(nbytes))))

    def bytes(self):
        out = b"GGUF" + struct.pack("<I", self.version)
        out += self.count(len(self.tensors)) + self.count(len(self.kv))
        for key, t, v in self.kv:
            out += self.string(key) + struct.pack("<I", t) + self.value(t, v)
        off = 0
        offsets = []
        for name, type_id, shape, data in self.tensors:
            dim = "<I" if self.version == 1 else "<Q"
            out += self.string(name) + struct.pack("<I", len(shape))
            out += b"".join(struct.pack(dim, d) for d in shape)
            out += struct.pack("<I", type_id) + struct.pack("<Q", off)
            offsets.append(off)
            off += (len(data) + self.alignment - 1) // self.alignment * self.alignment
        out += b"\0" * (-len(out) % self.alignment)
        for data in (t[3] for t in self.tensors):
            out += data + b"\0" * (-len(data) % self.alignment)
        return out


def all_types(g):
    g.add("general.architecture", STR, "llama")
    g.add("t.u8", U8, 200)
    g.add("t.i8", I8, -5)
    g.add("t.u16", U16, 60000)
    g.add("t.i16", I16, -3000)
    g.add("t.u32", U32, 4000000000)
    g.add("t.i32", I32, -7)
    g.add("t.f32", F32, 1e-5)
    g.add("t.bool", BOOL, True)
    g.add("t.u64", U64, 1 << 40)
    g.add("t.i64", I64, -(1 << 40))
    g.add("t.f64", F64, 0.25)
    g.add("t.arr", ARR, (STR, ["a", "bc", ""]))
    g.add("t.nested", ARR, (ARR, [(I32, [1, 2]), (F32, [0.5])]))


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    seeds = {}
    for version in (1, 2, 3):
        g = Gguf(version)
        all_types(g)
        g.tensor("a.weight", 0, [4, 2], 32)       # F32
        g.tensor("b.weight", 8, [32, 1], 34)      # Q8_0
        g.tensor("c.weight", 1, [3], 6)           # F16
        seeds[f"v{version}-all-types.gguf"] = g.bytes()
    g = Gguf(3, alignment=64)
    g.add("general.alignment", U32, 64)
    g.add("llama.block_count", U32, 1)
    g.tensor("q.weight", 12, [256, 1], 144)       # Q4_K
    g.tensor("r.weight", 2, [32, 2], 36)          # Q4_0
    seeds["v3-align64.gguf"] = g.bytes()
    g = Gguf(3)
    g.add("tokenizer.ggml.model", STR, "llama")
    g.add("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "a"]))
    g.add("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, -1.0]))
    g.add("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 1]))
    seeds["v3-vocab-only.gguf"] = g.bytes()
    seeds["v3-empty.gguf"] = Gguf(3).bytes()
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus"))

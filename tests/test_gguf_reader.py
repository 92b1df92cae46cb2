"""The fast GGUF reader gives what gguf's own reader gives: every field, every tensor, the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.models.gguf_reader import fast_gguf_reader, open_reader, reader_class

HOSTILE = ["<s>", "\"quoted\"", "it's", "a & b", "<script>alert(1)</script>", "&amp;", "▁word", "Ġword", "", "東京"]


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    rng = np.random.default_rng(0)
    w = GGUFWriter(str(path), "llama")
    w.add_uint32("llama.block_count", 2)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_string("general.name", "tiny <test> & \"model\"")
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_array("tokenizer.ggml.tokens", HOSTILE * 50)
    w.add_array("tokenizer.ggml.scores", [float(x) for x in rng.normal(size=len(HOSTILE) * 50)])
    w.add_array("tokenizer.ggml.token_type", [1] * (len(HOSTILE) * 50))
    w.add_tensor("token_embd.weight", rng.normal(size=(64, 32)).astype(np.float32))
    w.add_tensor("blk.0.attn_norm.weight", rng.normal(size=32).astype(np.float16))
    q8 = rng.normal(size=(16, 64)).astype(np.float32)
    w.add_tensor("blk.0.ffn_up.weight", quantize(q8, GGMLQuantizationType.Q8_0),
                 raw_dtype=GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_fields_and_tensors_equal_the_stock_reader(gguf_file):
    from gguf import GGUFReader

    stock, fast = GGUFReader(str(gguf_file)), open_reader(str(gguf_file))
    assert list(fast.fields) == list(stock.fields)
    for name, a in stock.fields.items():
        b = fast.fields[name]
        assert (b.offset, b.types, b.data) == (a.offset, a.types, a.data), name
        assert b.contents() == a.contents(), name
        assert [(p.dtype, p.tobytes()) for p in b.parts] == [(p.dtype, p.tobytes()) for p in a.parts], name
    assert fast.fields["tokenizer.ggml.tokens"].contents() == HOSTILE * 50
    assert [t.name for t in fast.tensors] == [t.name for t in stock.tensors]
    for a, b in zip(stock.tensors, fast.tensors, strict=True):
        assert (b.tensor_type, b.shape.tolist(), b.data_offset, b.n_bytes) == \
            (a.tensor_type, a.shape.tolist(), a.data_offset, a.n_bytes)
        assert b.data.dtype == a.data.dtype and b.data.shape == a.data.shape
        np.testing.assert_array_equal(b.data, a.data)


def test_transformers_loads_through_the_fast_reader_and_the_stock_one_comes_back(gguf_file):
    import gguf

    reader_class.cache_clear()  # first built inside a block too, as the first load of a process does
    stock = gguf.GGUFReader
    with fast_gguf_reader():
        first = gguf.GGUFReader(str(gguf_file))  # as transformers opens it
        assert isinstance(first, reader_class())
        with fast_gguf_reader():  # nested loads (the config inside a model load) share the parse
            assert open_reader(str(gguf_file)) is first
        assert gguf.GGUFReader(str(gguf_file)) is first
    assert gguf.GGUFReader is stock
    assert open_reader(str(gguf_file)) is not first  # outside a block every open parses anew
    with pytest.raises(ValueError), fast_gguf_reader():
        raise ValueError("a failed load restores the stock reader too")
    assert gguf.GGUFReader is stock


def test_tensor_name_maps_are_built_once_per_block_and_map_as_gguf_does():
    import gguf

    stock = gguf.get_tensor_name_map
    arch = gguf.MODEL_ARCH.LLAMA
    with fast_gguf_reader():
        a = gguf.get_tensor_name_map(arch, 4)
        with fast_gguf_reader():
            assert gguf.get_tensor_name_map(arch, 4) is a  # transformers asks once per module converted
        assert gguf.get_tensor_name_map(arch, 5) is not a
        fresh = stock(arch, 4)
        for name in ("model.embed_tokens", "model.layers.3.self_attn.q_proj", "model.norm", "lm_head"):
            assert a.get_name(name) == fresh.get_name(name) is not None
    assert gguf.get_tensor_name_map is stock
    with fast_gguf_reader():
        assert gguf.get_tensor_name_map(arch, 4) is not a  # a new block builds its own
    assert gguf.get_tensor_name_map is stock

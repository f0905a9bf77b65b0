#!/usr/bin/env python3
"""Writes the corpus of broken safetensors files that tests/weights/test_safetensors_corrupt.cpp
opens (and that seeds the fuzz target), plus a few small valid files.

Python standard library only. Run from anywhere:
    python3 tools/reference/make_corrupt_safetensors.py
Outputs (committed):
    tests/fixtures/safetensors_corrupt/*.safetensors   one defect per file
    tests/fixtures/safetensors_valid/*.safetensors     small valid files (fuzz seeds, alignment test)

Layout reminder: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data.
"""
import json
import os
import struct

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORRUPT = os.path.join(ROOT, "tests", "fixtures", "safetensors_corrupt")
VALID = os.path.join(ROOT, "tests", "fixtures", "safetensors_valid")

# Deterministic, non-zero payloads.
F32_PAIR = struct.pack("<2f", 1.5, -2.25)          # 8 bytes
F16_PAIR = struct.pack("<2H", 0x3E00, 0xC080)       # 1.5, -2.25 as IEEE half
BF16_PAIR = struct.pack("<2H", 0x3FC0, 0xC010)      # 1.5, -2.25 as bfloat16


def pack(header, data=b"", length=None):
    """A safetensors file from a header (str or bytes) and data; `length` overrides N."""
    h = header.encode("utf-8") if isinstance(header, str) else header
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


VALID_HEADER = dumps({"a": entry("F32", [2], 0, 8), "b": entry("F16", [2], 8, 12)})
VALID_DATA = F32_PAIR + F16_PAIR


def corrupt_files():
    files = {}
    valid = pack(VALID_HEADER, VALID_DATA)

    # ---- sizes and the length prefix
    files["empty_file"] = b""
    files["seven_bytes"] = b"\x10\x00\x00\x00\x00\x00\x00"
    files["truncated"] = valid[: len(valid) - 5]  # data cut short
    files["truncated_in_header"] = valid[:20]
    files["header_length_past_end"] = pack(VALID_HEADER, VALID_DATA, length=len(VALID_HEADER) + len(VALID_DATA) + 1)
    files["header_length_huge"] = pack(VALID_HEADER, VALID_DATA, length=200_000_000)
    files["header_length_u64_max"] = pack(VALID_HEADER, VALID_DATA, length=2**64 - 1)
    files["header_length_zero"] = pack(b"", VALID_DATA, length=0)

    # ---- ranges in the data section
    files["overlapping_ranges"] = pack(dumps({"a": entry("F32", [2], 0, 8), "b": entry("F16", [2], 6, 10)}), F32_PAIR + b"\x01\x02")
    files["gap_between_ranges"] = pack(dumps({"a": entry("F32", [2], 0, 8), "b": entry("F16", [2], 10, 14)}), F32_PAIR + b"\x01\x02" + F16_PAIR)
    files["gap_at_start"] = pack(dumps({"a": entry("F32", [2], 4, 12)}), b"\x01\x02\x03\x04" + F32_PAIR)
    files["out_of_file_range"] = pack(dumps({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 8, 16)}), F32_PAIR + b"\x01\x02")
    files["offsets_u64_max"] = pack(dumps({"a": entry("F32", [0], 2**64 - 1, 2**64 - 1)}), b"")
    files["trailing_bytes"] = pack(VALID_HEADER, VALID_DATA + b"polyglot")
    files["begin_greater_than_end"] = pack(dumps({"a": entry("F32", [2], 8, 0)}), F32_PAIR)
    files["shape_size_mismatch"] = pack(dumps({"a": entry("F32", [3], 0, 8)}), F32_PAIR)

    # ---- duplicates (a plain JSON library keeps the last one silently)
    files["duplicate_tensor_name"] = pack(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}',
        F32_PAIR + F32_PAIR)
    files["duplicate_metadata_key"] = pack(
        '{"__metadata__":{"format":"pt","format":"evil"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["duplicate_metadata_block"] = pack(
        '{"__metadata__":{"x":"1"},"__metadata__":{"x":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["duplicate_field"] = pack(
        '{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)

    # ---- dtypes
    files["unknown_dtype"] = pack(dumps({"a": entry("Q9_X", [2], 0, 8)}), F32_PAIR)
    files["unsupported_dtype_i64"] = pack(dumps({"a": entry("I64", [1], 0, 8)}), F32_PAIR)
    files["unsupported_dtype_u8"] = pack(dumps({"a": entry("U8", [8], 0, 8)}), F32_PAIR)

    # ---- shapes
    files["enormous_dims"] = pack(dumps({"a": entry("F32", [2**40, 2**40, 2**40], 0, 8)}), F32_PAIR)
    files["dims_product_wraps_to_2"] = pack(dumps({"a": entry("F32", [2**63, 2**63, 2], 0, 8)}), F32_PAIR)
    files["zero_and_huge_dim"] = pack(dumps({"a": entry("F32", [0, 2**64 - 1], 0, 0)}), b"")
    files["dim_beyond_u64"] = pack('{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}}', F32_PAIR)
    files["negative_dim"] = pack(dumps({"a": entry("F32", [-2], 0, 8)}), F32_PAIR)
    files["float_dim"] = pack('{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', F32_PAIR)
    files["rank6"] = pack(dumps({"a": entry("F32", [1, 1, 1, 1, 1, 2], 0, 8)}), F32_PAIR)

    # ---- encoding and JSON
    files["non_utf8_header"] = pack(b'{"a\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["overlong_utf8_header"] = pack(b'{"\xc0\xaf":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["surrogate_utf8_header"] = pack(b'{"\xed\xa0\x80":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["non_json_header"] = pack("this is not json at all!", F32_PAIR)
    files["json_trailing_garbage"] = pack(VALID_HEADER + " x", VALID_DATA)
    files["json_comment"] = pack('{/* c */"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["json_array"] = pack('[{"dtype":"F32","shape":[2],"data_offsets":[0,8]}]', F32_PAIR)
    files["json_deeply_nested"] = pack("[" * 100000 + "]" * 100000, b"")
    files["json_string"] = pack('"just a string"', b"")

    # ---- missing fields and wrong field types
    files["missing_dtype"] = pack('{"a":{"shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["missing_shape"] = pack('{"a":{"dtype":"F32","data_offsets":[0,8]}}', F32_PAIR)
    files["missing_data_offsets"] = pack('{"a":{"dtype":"F32","shape":[2]}}', F32_PAIR)
    files["unknown_field"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}', F32_PAIR)
    files["dtype_not_string"] = pack('{"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    files["shape_not_array"] = pack('{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}', F32_PAIR)
    files["shape_holds_string"] = pack('{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', F32_PAIR)
    files["offsets_not_array"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":{"begin":0}}}', F32_PAIR)
    files["offsets_three_values"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', F32_PAIR)
    files["offsets_one_value"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}', F32_PAIR)
    files["offsets_negative"] = pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', F32_PAIR)
    files["tensor_not_object"] = pack('{"a":[1,2]}', b"")
    files["metadata_not_object"] = pack('{"__metadata__":"pt"}', b"")
    files["metadata_value_not_string"] = pack('{"__metadata__":{"step":1000}}', b"")
    files["empty_tensor_name"] = pack('{"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    return files


def valid_files():
    files = {}
    files["two_tensors"] = pack(VALID_HEADER, VALID_DATA)
    files["empty_header_object"] = pack("{}", b"")
    # The reference reader treats "__metadata__": null as no metadata.
    files["metadata_null"] = pack('{"__metadata__":null,"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_PAIR)
    # Every dtype reel reads, metadata, a scalar and a zero-size tensor, header padded with spaces.
    header = {
        "__metadata__": {"format": "pt", "note": "reel fixture"},
        "f32": entry("F32", [2], 0, 8),
        "bf16": entry("BF16", [2], 8, 12),
        "f16": entry("F16", [2], 12, 16),
        "scalar": entry("F32", [], 16, 20),
        "empty": entry("F32", [0, 3], 20, 20),
        "e4m3": entry("F8_E4M3", [4], 20, 24),
        "e5m2": entry("F8_E5M2", [2, 2], 24, 28),
    }
    text = dumps(header)
    text += " " * ((8 - len(text) % 8) % 8)
    data = F32_PAIR + BF16_PAIR + F16_PAIR + struct.pack("<f", 0.75) + bytes([0x38, 0xB8, 0x7E, 0x01]) + bytes([0x3C, 0xBC, 0x7B, 0x7C])
    files["all_dtypes"] = pack(text, data)
    # Valid but misaligned: a 3-byte F8 tensor first puts the F32 data at an odd offset, so
    # view() must copy instead of handing out a misaligned pointer.
    text = dumps({"e4m3": entry("F8_E4M3", [3], 0, 3), "f32": entry("F32", [2], 3, 11), "bf16": entry("BF16", [2], 11, 15)})
    text += " " * ((8 - len(text) % 8) % 8)
    files["misaligned"] = pack(text, bytes([0x38, 0x40, 0x44]) + F32_PAIR + BF16_PAIR)
    return files


def write_all(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, content in sorted(files.items()):
        with open(os.path.join(folder, name + ".safetensors"), "wb") as f:
            f.write(content)
    print(f"wrote {len(files)} files to {os.path.relpath(folder, ROOT)}")


if __name__ == "__main__":
    write_all(CORRUPT, corrupt_files())
    write_all(VALID, valid_files())

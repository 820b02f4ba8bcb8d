"""Reference token ids for the tests: a GGUF's tokenizer as transformers
rebuilds it (its own GGUF-to-tokenizer mapping, on the Hugging Face
`tokenizers` library), independent of seki's code.

    python3 -m venv target/tokref && target/tokref/bin/pip install transformers gguf numpy
    target/tokref/bin/python bench/tokenizer_reference.py models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

transformers' own GGUF reader imports torch; this reads the metadata with
the `gguf` package instead and hands it to the same mapping.
"""

import json
import sys

import gguf
from transformers.integrations.gguf.gguf_tokenizer_mapping import (
    GGUF_TOKENIZER_MAPPING,
    convert_gguf_tokenizer,
)

TEXTS = [
    "it's I'll we've they're don't",
    "  multiple   spaces\t\ttabs\n\nnewlines \n",
    "12345 3.14 1,000,000 x2y3",
    "a\u00a0b\u2003c",
    "Genotype(normal=[('sep_conv_3x3', 0)])",
    '{"node1": ["nor_conv_3x3"], "node2": ["none", "skip_connect"]}',
    "日本語のテキスト 🦀",
]


def value(field):
    string = gguf.GGUFValueType.STRING
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        if field.types[-1] == string:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    part = field.parts[field.data[0]]
    return bytes(part).decode("utf-8") if field.types[0] == string else part.tolist()[0]


def main(path):
    reader = gguf.GGUFReader(path)
    tokenizer = {
        name: value(reader.fields[f"tokenizer.{key}"])
        for key, name in GGUF_TOKENIZER_MAPPING["tokenizer"].items()
        if f"tokenizer.{key}" in reader.fields
    }
    arch = value(reader.fields["general.architecture"])
    backend, _ = convert_gguf_tokenizer(arch, tokenizer)
    for text in TEXTS:
        print(json.dumps({"text": text, "ids": backend.encode(text, add_special_tokens=False).ids}, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])

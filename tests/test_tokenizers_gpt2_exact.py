"""GPT-2's BPE is exact, checked with nothing but this file and the shipped tokenizer files.

`PARAGRAPH` is a short text chosen to be hard: punctuation, numbers, contractions, many
scripts, emoji (with joiners and a flag), tabs, runs of spaces and newlines, a CRLF, and
English words whose merges overlap, so that applying two merges in the wrong order
changes the ids. `GPT2_IDS` are its ids as tiktoken gives them from the same two files
(generated once, with `tests/conftest.py: build_tiktoken`, and committed), so this test
needs neither ../shared nor tiktoken nor the network.
"""
from __future__ import annotations


from corpora.tokenizers.bpe import GPT2_TOKENIZER_DIR, BPETokenizer, gpt2_tokenizer

PARAGRAPH = (
    "It's 4:30 p.m. on 12/03/2024, and we've spent $1,234.56 (≈ €1.150) on \"naïve\" café-au-lait… "
    "Don't they'll? I'm sure you'd say: 'No!!!'    Four spaces,\ttab, then\n\n\nthree newlines.\r\n"
    "Windows ending. Ünïcödé: 日本語のテキスト, Ελληνικά, русский текст, עברית, العربية; "
    "emoji 🤖🎉👩‍👩‍👧 and a flag 🇫🇷.\n"
    "Numbers: 3.14159, 1e-10, 0x1F, 1000000, 2nd, 3rd, 99%!\n"
    "Code: def f(x): return x**2  # comment\n"
    "    indented line   with   runs    of spaces   \n"
    "<|endoftext|> is plain text here. URLs like https://example.com/a?b=c&d=e#frag, e-mail someone@example.org.\n"
    "CAPITALS SHOUT; camelCase, snake_case, kebab-case.  Mr. O'Neil's dog—who'd've thought?—ate 2½ pies ’n’ stuff.\n"
    "The quick brown fox jumps over the lazy dog; however, the lower ordering of their merges "
    "matters when pairs overlap, as in 'there', 'other', 'interesting' and 'understanding'.\n"
)

GPT2_IDS = [
    1026, 338, 604, 25, 1270, 279, 13, 76, 13, 319, 1105, 14, 3070, 14, 1238, 1731, 11, 290,
    356, 1053, 3377, 720, 16, 11, 24409, 13, 3980, 357, 35705, 230, 10432, 16, 13, 8628, 8, 319,
    366, 2616, 38776, 1, 40304, 12, 559, 12, 75, 4548, 1399, 2094, 470, 484, 1183, 30, 314,
    1101, 1654, 345, 1549, 910, 25, 705, 2949, 10185, 6, 220, 220, 220, 6675, 9029, 11, 197,
    8658, 11, 788, 628, 198, 15542, 649, 6615, 13, 201, 198, 11209, 7464, 13, 49363, 77, 26884,
    66, 9101, 67, 2634, 25, 10545, 245, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302,
    11, 7377, 243, 39377, 39377, 138, 115, 26180, 29945, 43000, 138, 105, 11, 220, 21169, 35072,
    21727, 21727, 31583, 18849, 140, 117, 220, 20375, 16843, 31583, 21727, 20375, 11, 14360, 95,
    49603, 37778, 33951, 103, 11, 28981, 44690, 26897, 39848, 22654, 45632, 26, 44805, 12520,
    97, 244, 8582, 236, 231, 41840, 102, 447, 235, 41840, 102, 447, 235, 41840, 100, 290, 257,
    6056, 12520, 229, 104, 8582, 229, 115, 13, 198, 49601, 25, 513, 13, 1415, 19707, 11, 352,
    68, 12, 940, 11, 657, 87, 16, 37, 11, 1802, 2388, 11, 362, 358, 11, 513, 4372, 11, 7388, 4,
    0, 198, 10669, 25, 825, 277, 7, 87, 2599, 1441, 2124, 1174, 17, 220, 1303, 2912, 198, 220,
    220, 220, 773, 4714, 1627, 220, 220, 351, 220, 220, 4539, 220, 220, 220, 286, 9029, 220,
    220, 220, 198, 27, 91, 437, 1659, 5239, 91, 29, 318, 8631, 2420, 994, 13, 32336, 588, 3740,
    1378, 20688, 13, 785, 14, 64, 30, 65, 28, 66, 5, 67, 28, 68, 2, 8310, 363, 11, 304, 12,
    4529, 2130, 31, 20688, 13, 2398, 13, 198, 33177, 2043, 23333, 6006, 12425, 26, 41021, 20448,
    11, 17522, 62, 7442, 11, 885, 65, 397, 12, 7442, 13, 220, 1770, 13, 440, 6, 29354, 338,
    3290, 960, 8727, 1549, 1053, 1807, 30, 960, 378, 362, 23141, 47199, 564, 247, 77, 447, 247,
    3404, 13, 198, 464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 26, 2158, 11, 262,
    2793, 16216, 286, 511, 4017, 3212, 6067, 618, 14729, 21721, 11, 355, 287, 705, 8117, 3256,
    705, 847, 3256, 705, 47914, 6, 290, 705, 4625, 5646, 4458, 198,
]


def test_gpt2_ids_of_a_hard_paragraph_are_exact() -> None:
    assert gpt2_tokenizer().encode(PARAGRAPH) == GPT2_IDS


def test_the_paragraph_round_trips_byte_for_byte() -> None:
    assert gpt2_tokenizer().decode_bytes(GPT2_IDS) == PARAGRAPH.encode("utf-8")


def test_a_fresh_load_of_the_shipped_files_is_exact_too() -> None:
    """Not the cached tokenizer: the files read again, as `transformer tokenize --model DIR` does."""
    assert BPETokenizer.from_dir(GPT2_TOKENIZER_DIR).encode(PARAGRAPH) == GPT2_IDS


def test_committed_ids_are_tiktokens(tiktoken_from_files) -> None:
    """How GPT2_IDS were made (skipped when tiktoken is not installed)."""
    reference = tiktoken_from_files(GPT2_TOKENIZER_DIR, "gpt2-from-shipped-files")
    assert reference.encode_ordinary(PARAGRAPH) == GPT2_IDS

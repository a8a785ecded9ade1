"""benchmarks/other_novels.py: the fixed excerpt each novel is scored on."""
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from other_novels import excerpt_of, novel_excerpt  # noqa: E402


def paragraphs(n: int) -> str:
    return "\n\n".join(f"Paragraph {i} says something.\nIt has two lines." for i in range(n)) + "\n"


def test_excerpt_is_whole_paragraphs_from_after_the_start_fraction_within_the_budget():
    body = paragraphs(200)
    part = excerpt_of(body, chars=1_000, start_fraction=0.4)
    assert part.startswith("Paragraph ") and part.endswith("two lines.")
    first = int(part.split()[1])
    assert body.find(f"Paragraph {first} ") >= 0.4 * len(body)  # starts after 40% of the body
    assert body.find(f"Paragraph {first - 1} ") < 0.4 * len(body)  # ... at the first paragraph after it
    assert len(part) <= 1_000 and part.strip("\n") in body  # one contiguous span, within the budget
    assert len(part) > 1_000 - 2 * len("Paragraph 100 says something.\nIt has two lines.\n\n")  # and nearly fills it


def test_a_short_body_gives_what_it_has_from_the_same_start():
    body = paragraphs(10)
    part = excerpt_of(body, chars=100_000, start_fraction=0.4)
    first = body.find("\n\n", int(0.4 * len(body))) + 2
    assert part == body[first:].strip("\n") and part.startswith("Paragraph 5 ") and part.endswith("Paragraph 9 says something.\nIt has two lines.")


def test_novel_excerpt_drops_the_gutenberg_header_and_hashes_the_excerpt(tmp_path):
    body = paragraphs(300)
    path = tmp_path / "pg1.txt"
    path.write_text("Header words\n*** START OF THE PROJECT GUTENBERG EBOOK 1 ***\n" + body
                    + "*** END OF THE PROJECT GUTENBERG EBOOK 1 ***\nLicence words\n", encoding="utf-8")
    text, digest = novel_excerpt(path)
    assert "Header" not in text and "Licence" not in text and "***" not in text
    assert text == excerpt_of(body.strip("\n") + "\n")
    assert digest == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_excerpt_is_the_text_bench_perplexity_scores_from_a_file_holding_it(tmp_path):
    from bench.perplexity import text_from_file

    part = excerpt_of(paragraphs(300), chars=5_000)
    (tmp_path / "excerpt.txt").write_text(part + "\n", encoding="utf-8")
    assert text_from_file(tmp_path / "excerpt.txt").text == part

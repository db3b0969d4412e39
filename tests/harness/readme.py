"""README's fenced code blocks, so tests can run the commands a reader copies."""
import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class CodeBlock:
    language: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0]


def code_blocks() -> list[CodeBlock]:
    return [CodeBlock(language, text) for language, text in
            re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), re.S | re.M)]


def block_starting(prefix: str) -> CodeBlock:
    """The one README code block whose first line starts with `prefix`."""
    found = [block for block in code_blocks() if block.first_line.startswith(prefix)]
    assert len(found) == 1, f"README has {len(found)} code blocks starting with {prefix!r}"
    return found[0]


def fill(block: CodeBlock, placeholders: dict[str, str]) -> str:
    """The block's text with its <placeholders> (and example values) replaced by real ones; every
    placeholder must be in the block, so a README edit that drops one is noticed."""
    text = block.text
    for placeholder, value in placeholders.items():
        assert placeholder in text, f"README block {block.first_line!r} no longer contains {placeholder!r}"
        text = text.replace(placeholder, value)
    assert not re.search(r"<[a-z-]+>", text), f"unfilled placeholder in {text!r}"
    return text

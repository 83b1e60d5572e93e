"""Counted findings about a corpus, each with the first place it occurred.

A finding such as "sentence longer than max_seq_length" is only useful if the
person can go and look at one, so every count keeps an example location.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Finding:
    """How often something was seen, and where it was seen first."""

    count: int = 0
    example: str = ""  # "path:line", "path" or "" when no location applies

    def to_dict(self) -> dict:
        return {"count": self.count, "example": self.example}


# Human descriptions of the findings the reader and the store record.
DESCRIPTIONS = {
    "empty_file": "empty files (skipped)",
    "skipped_file": "files in folders with an unsupported extension (skipped)",
    "replaced_bytes": "bytes that were not UTF-8, replaced by U+FFFD",
    "long_line": "lines longer than 1 MiB, read in pieces",
    "long_sentence_chars": "sentences longer than 10,000 characters, cut at white space",
    "empty_document": "records with no text (skipped)",
    "one_sentence_document": "documents with a single sentence",
    "long_sentence": "sentences longer than max_seq_length - 3 tokens (will be truncated)",
    "unknown_token": "[UNK] tokens (characters outside the vocabulary)",
    "empty_sentence": "sentences that produced no tokens (skipped)",
}


@dataclass
class Diagnostics:
    """A bag of findings filled while a corpus is read and tokenized."""

    findings: dict[str, Finding] = field(default_factory=dict)

    def note(self, name: str, where: str = "", count: int = 1) -> None:
        finding = self.findings.setdefault(name, Finding())
        if not finding.example and where:
            finding.example = where
        finding.count += count

    def count(self, name: str) -> int:
        finding = self.findings.get(name)
        return finding.count if finding else 0

    def to_dict(self) -> dict:
        return {name: f.to_dict() for name, f in sorted(self.findings.items())}

    @classmethod
    def merged(cls, *parts: "Diagnostics") -> "Diagnostics":
        """One bag of the findings of ``parts``: counts add up, the first example (in ``parts`` order) stays."""
        out = cls()
        for part in parts:
            for name, finding in part.findings.items():
                out.note(name, finding.example, finding.count)
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> "Diagnostics":
        return cls({name: Finding(int(v["count"]), str(v.get("example", ""))) for name, v in raw.items()})

    def lines(self) -> list[str]:
        """One readable line per finding, e.g. '3 empty files (skipped), first: a/b.txt'."""
        out = []
        for name, finding in sorted(self.findings.items()):
            text = f"{finding.count:,} {DESCRIPTIONS.get(name, name)}"
            if finding.example:
                text += f", first at {finding.example}"
            out.append(text)
        return out

"""Corpus importers: each reads a corpus in its own layout, checks every file and writes JSONL manifests.

One module per corpus (an4, fsdd, kaldi, folder); check.py holds the shared per-file checks and the
rejected.tsv writer, text.py the shared transcript normalization, numbers.py the connected-digit synthesis.
"""

from gruasr.data.corpora.an4 import import_an4
from gruasr.data.corpora.check import CheckLimits, ImportReport, Rejected, check_utterances
from gruasr.data.corpora.folder import import_folder
from gruasr.data.corpora.fsdd import import_fsdd
from gruasr.data.corpora.kaldi import import_kaldi
from gruasr.data.corpora.text import normalize_transcript

__all__ = [
    "CheckLimits",
    "ImportReport",
    "Rejected",
    "check_utterances",
    "import_an4",
    "import_folder",
    "import_fsdd",
    "import_kaldi",
    "normalize_transcript",
]

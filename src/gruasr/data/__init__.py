"""Data: manifests, corpora importers, tokens and batching."""

from gruasr.data.manifest import Utterance, iter_manifest, load_utterance, read_manifest, write_manifest

__all__ = ["Utterance", "iter_manifest", "load_utterance", "read_manifest", "write_manifest"]

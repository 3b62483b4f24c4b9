"""The `gruasr` command line."""

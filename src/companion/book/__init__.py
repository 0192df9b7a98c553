"""The book machinery: chapters, the command line, recorded claims, paths and the Sphinx
hook. The science modules of `companion` never import it."""

"""MkDocs hook: fills the configuration reference from the typed config at build time."""

MARKER = "<!-- configuration reference: generated -->"


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    from dqn_cli.api import plain_defaults
    from dqn_cli.help import reference_markdown

    return markdown.replace(MARKER, reference_markdown(plain_defaults()))

"""MkDocs hooks (mkdocs.yml `hooks:`); excluded from the site by `exclude_docs: *.py`.

The CLI reference (docs/cli.md) is rendered by mkdocs-click, whose option table prints
`option.default` as it is. Since click 8.3 an option given no default holds the sentinel
`UNSET`, so every flag read `Sentinel.UNSET`, and an option with no default read `None`.
The Default column here shows what the command does: a flag that is off unless given,
`False`; an option without a default (the command decides, or there is nothing), an
empty cell; a required one, `required`.
"""

import click
from mkdocs_click import _docs as mkdocs_click_docs

_format_row = mkdocs_click_docs._format_table_option_row


def _unset(value):
    return value is None or type(value).__name__ == "Sentinel" or repr(value).endswith("UNSET")


def option_default(option):
    """The Default cell of `option`: Markdown, or "" for no default."""
    if option.required:
        return "required"
    if not _unset(option.default):
        return f"`{option.default}`"
    if option.is_flag and getattr(option, "is_bool_flag", False) and not option.secondary_opts:
        return "`False`"  # a plain flag is off unless given
    return ""


def _format_table_option_row(option: click.Option) -> str:
    row = _format_row(option)
    head, _, _ = row.rstrip().rstrip("|").rstrip().rpartition(" | ")
    return f"{head} | {option_default(option)} |"


def on_config(config):
    mkdocs_click_docs._format_table_option_row = _format_table_option_row
    return config

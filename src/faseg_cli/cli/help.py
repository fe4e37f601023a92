"""Help pages in the usual command-line notation, each ending with examples.

Typer labels every parameter with its Python type (``<bool>`` on flags,
``<list[str]>`` on arguments) and writes required arguments as ``{inputs}...``.
faseg's commands and its root group use the classes below instead: the usage line
reads ``faseg segment [OPTIONS] INPUT...``, flags and arguments carry no type label,
and options that take a value show their ``metavar`` (``--classes NAMES``).
"""

from __future__ import annotations

from typer.core import TyperCommand, TyperGroup

EXAMPLES_TITLE = "Examples:"
PROMPT = "$ "


def examples(*pairs: tuple[str, str]) -> str:
    """A help epilog from ``(what it does, command line)`` pairs; the command lines are run by the tests."""
    from rich.markup import escape

    body = "\n\n".join(f"[dim]# {escape(what)}[/]\n{PROMPT}{escape(line)}" for what, line in pairs)
    return f"[bold]{EXAMPLES_TITLE}[/]\n\n{body}"


def _no_label(ctx) -> None:
    return None


class _PlainLabels:
    """Drop Typer's type labels from flags and arguments before the help is formatted."""

    def format_help(self, ctx, formatter) -> None:
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                param.display_type_rich = _no_label
            elif getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        super().format_help(ctx, formatter)


class Command(_PlainLabels, TyperCommand):
    """A faseg command: plain labels and ``INPUT...`` / ``[MODEL...]`` in the usage line."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or param.name.upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(_PlainLabels, TyperGroup):
    """The ``faseg`` group: plain labels on its global options."""

"""SQL snippets for text cleaning shared by parsers (expressions over code-supplied column names)."""


def sql_str(text: str) -> str:
    """A constant from code as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def unescape_html(column: str) -> str:
    """SQL decoding the entities the sources carry (`&amp;` last, so `&amp;lt;` decodes once), blank -> NULL."""
    expr = column
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&#039;", "'"),
                         ("&amp;", "&")):
        expr = f"replace({expr}, {sql_str(entity)}, {sql_str(char)})"
    return f"nullif(trim({expr}), '')"

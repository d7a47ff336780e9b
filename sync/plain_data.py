"""Plain-data classes on the hook's path, declared as a dataclass is.

The hook imports `sync/` and `stashplugin/settings.py` and must return at once. `dataclasses`
imports `inspect`, about 6 ms, a quarter of what a hook costs in `make bench`; so the value
classes on that path (the queue's `Job` and `QueueSummary`, `Settings`) use `plain_data`, which
does the part of `@dataclass` they need: `__init__` from the annotated fields and their
defaults, `__eq__` and `__repr__` over the fields, `__post_init__` when the class has one, and
`__slots__` on request. Everywhere else, use `dataclasses`.
"""

from __future__ import annotations

REQUIRED = object()  # the default of a field without one: the caller must pass it
_FIELDS = "__plain_fields__"


class Field:
    """A field declared with more than its default (as `dataclasses.field`). Subclasses add facts
    of their own (a setting's display name); `plain_data` fills in `name` and `kind` (the
    annotation as written, e.g. "int")."""

    name = kind = ""
    factory = None

    def __init__(self, default=REQUIRED, factory=None):
        self.default = default
        self.factory = factory  # called for each new object when no value is given (a dict, a list)


def fields(cls) -> tuple:
    """The `Field`s of a `plain_data` class, in declaration order."""
    return getattr(cls, _FIELDS)


def field_names(cls) -> tuple:
    """The names of a `plain_data` class's fields, in declaration order."""
    return tuple(f.name for f in fields(cls))


def plain_data(cls=None, *, slots: bool = False):
    """Class decorator, like `@dataclass` (or `@dataclass(slots=True)`)."""
    if cls is None:
        return lambda c: plain_data(c, slots=slots)
    found = []
    # (Python 3.14 keeps a class's annotations out of its __dict__; reading the attribute finds them.)
    annotations = cls.__dict__.get("__annotations__") or getattr(cls, "__annotations__", {})
    for name, kind in annotations.items():
        declared = cls.__dict__.get(name, REQUIRED)
        field = declared if isinstance(declared, Field) else Field(declared)
        if isinstance(field.default, (list, dict, set)):
            raise TypeError("%s.%s: a mutable default would be shared; use a factory" % (cls.__name__, name))
        field.name, field.kind = name, kind
        found.append(field)
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    for field in found:
        namespace.pop(field.name, None)
        if not slots and field.default is not REQUIRED:
            namespace[field.name] = field.default
    if slots:
        namespace["__slots__"] = tuple(f.name for f in found)
    namespace[_FIELDS] = tuple(found)
    namespace["__init__"] = _init(found, "__post_init__" in namespace, cls.__qualname__)
    namespace.setdefault("__repr__", _repr)
    if "__eq__" not in namespace:
        namespace["__eq__"], namespace["__hash__"] = _eq, None
    return type(cls)(cls.__name__, cls.__bases__, namespace)


def _init(found: list, post_init: bool, qualname: str):
    defaults = {f.name: f.default for f in found if f.default is not REQUIRED or f.factory}
    params, lines = [], []
    for f in found:
        params.append("%s=_defaults[%r]" % (f.name, f.name) if f.name in defaults else f.name)
        value = "_factories[%r]() if %s is _defaults[%r] else %s" % (f.name, f.name, f.name, f.name)
        lines.append("    self.%s = %s" % (f.name, value if f.factory else f.name))
    lines.append("    self.__post_init__()" if post_init else "    pass")
    source = "def __init__(self, %s):\n%s\n" % (", ".join(params), "\n".join(lines))
    scope = {"_defaults": defaults, "_factories": {f.name: f.factory for f in found if f.factory}}
    exec(source, scope)  # noqa: S102 - code built from the class's own field names, as dataclasses does
    init = scope["__init__"]
    init.__qualname__ = "%s.__init__" % qualname
    return init


def _repr(self) -> str:
    values = ", ".join("%s=%r" % (f.name, getattr(self, f.name)) for f in fields(type(self)))
    return "%s(%s)" % (type(self).__name__, values)


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = [f.name for f in fields(type(self))]
    return [getattr(self, n) for n in names] == [getattr(other, n) for n in names]

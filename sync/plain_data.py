"""Plain-data classes on the hook's path, declared as a dataclass is.

The hook imports `sync/` and `stashplugin/settings.py` and must return at once. `dataclasses`
imports `inspect`, about 6 ms, a quarter of what a hook costs in `make bench`; so the value
classes on that path (the queue's `Job` and `QueueSummary`, `Settings`) use `plain_data`, which
does the part of `@dataclass` they need: `__init__` from the annotated fields and their
defaults (or a factory), `__eq__` and `__repr__` over the fields, `__post_init__` when the class
has one, and `__slots__` on request. It also costs less to import than `@dataclass` itself,
which compiles each `__init__` at once: a class with slots gets its `__init__` compiled when its
first object is made, one without keeps its defaults on the class and needs none compiled.
Everywhere else, use `dataclasses`.
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
    found = _declared(cls)
    added = {_FIELDS: found, "__init__": _first_init if slots else _init_from_class}
    if "__repr__" not in cls.__dict__:
        added["__repr__"] = _repr
    if "__eq__" not in cls.__dict__:
        added.update(__eq__=_eq, __hash__=None)
    if slots:  # a class gets its slots when it is made: make it again
        names = tuple(f.name for f in found)
        namespace = {k: v for k, v in cls.__dict__.items() if k not in names + ("__dict__", "__weakref__")}
        return type(cls)(cls.__name__, cls.__bases__, dict(namespace, __slots__=names, **added))
    for field in found:  # the defaults stay on the class, as with @dataclass
        if field.default is not REQUIRED:
            setattr(cls, field.name, field.default)
        elif field.name in cls.__dict__:
            delattr(cls, field.name)
    for name, value in added.items():
        setattr(cls, name, value)
    return cls


def _declared(cls) -> tuple:
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
    return tuple(found)


def _init_from_class(self, *args, **kwargs):
    """`__init__` of a class without slots (made a few times per process, like `Settings`): the
    defaults stay on the class, the object holds what it was given. Building it costs nothing."""
    table = fields(type(self))
    given = dict(zip((f.name for f in table), args))
    if len(args) > len(table) or set(kwargs) & set(given) or set(kwargs) - {f.name for f in table}:
        raise TypeError("%s() got unexpected arguments" % type(self).__name__)
    given.update(kwargs)
    for f in table:
        if f.name not in given and f.factory:
            given[f.name] = f.factory()
        elif f.name not in given and f.default is REQUIRED:
            raise TypeError("%s() needs %r" % (type(self).__name__, f.name))
    self.__dict__.update(given)
    if hasattr(self, "__post_init__"):
        self.__post_init__()


def _first_init(self, *args, **kwargs):
    """`__init__` of a class with slots (made in bulk, like `Job`): compiled when its first object
    is made, as `dataclasses` compiles it at once; the hook never makes most of these objects."""
    cls = next(c for c in type(self).__mro__ if c.__dict__.get("__init__") is _first_init)
    cls.__init__ = _init(fields(cls), hasattr(cls, "__post_init__"), cls.__qualname__)
    cls.__init__(self, *args, **kwargs)


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
    exec(source, scope)  # code built from the class's own field names, as dataclasses builds it
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

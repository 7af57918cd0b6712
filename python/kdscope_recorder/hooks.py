"""Capturing hidden states and attention maps from an nn.Module with forward hooks, for
models that do not return them.

    from kdscope_recorder.hooks import capture

    with capture(model, hidden=["embed", "layers.0", "layers.1"],
                 attentions=[("layers.0.attn.probs", "output"), ("layers.1.attn.probs", "output")]) as cap:
        logits = model(tokens)
        rec.record_eval(task, name, logits, hidden_states=cap.hidden, attentions=cap.attentions)

Each entry names a submodule (as in model.named_modules()) and optionally what to take
from it: "output" (the default; the first element of a tuple output), "input" (the first
positional input), an integer k (element k of a tuple output, e.g. 1 for the weights of
nn.MultiheadAttention called with need_weights=True, average_attn_weights=False), or a
callable (module, inputs, output) -> tensor. Values are detached. The lists are reset at
the start of every forward pass of `model`, so after a forward they hold that pass's
tensors, in the order the names were given.
"""

import torch


class CaptureError(ValueError):
    pass


def _selector(spec):
    if isinstance(spec, str):
        return spec, "output"
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return spec[0], spec[1]
    raise CaptureError(f"expected a module name or (name, what), got {spec!r}")


def _take(what, inputs, output, module):
    if callable(what):
        return what(module, inputs, output)
    if what == "output":
        return output[0] if isinstance(output, (tuple, list)) else output
    if what == "input":
        return inputs[0]
    if isinstance(what, int):
        return output[what]
    raise CaptureError(f"cannot take {what!r} from a module (use 'output', 'input', an index or a callable)")


class capture:
    """Forward hooks on named submodules of `model` (see the module's documentation)."""

    def __init__(self, model, hidden=(), attentions=(), detach=True):
        self.model = model
        self.detach = detach
        modules = dict(model.named_modules())
        self._specs = {"hidden": [_selector(s) for s in hidden], "attentions": [_selector(s) for s in attentions]}
        for kind, specs in self._specs.items():
            for name, _ in specs:
                if name not in modules:
                    known = ", ".join(n for n in list(modules)[:20] if n)
                    raise CaptureError(f"{type(model).__name__} has no submodule {name!r} ({kind}; modules: {known}, ...)")
        self._modules = modules
        self._handles = []
        self._values = {"hidden": [], "attentions": []}

    def _reset(self, *_):
        self._values = {kind: [None] * len(specs) for kind, specs in self._specs.items()}

    def _hook(self, kind, index, name, what):
        def hook(module, inputs, output):
            value = _take(what, inputs, output, module)
            if not isinstance(value, torch.Tensor):
                raise CaptureError(f"{name}: took {type(value).__name__}, expected a tensor")
            if self._values[kind][index] is not None:
                raise CaptureError(f"{name}: called twice in one forward pass of {type(self.model).__name__} "
                                   f"(a shared module: hook a module that runs once)")
            self._values[kind][index] = value.detach() if self.detach else value
        return hook

    def __enter__(self):
        self._reset()
        self._handles.append(self.model.register_forward_pre_hook(self._reset))
        for kind, specs in self._specs.items():
            for index, (name, what) in enumerate(specs):
                self._handles.append(self._modules[name].register_forward_hook(self._hook(kind, index, name, what)))
        return self

    def __exit__(self, *_):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return False

    def _get(self, kind):
        values = self._values[kind]
        missing = [self._specs[kind][i][0] for i, v in enumerate(values) if v is None]
        if missing:
            raise CaptureError(f"no {kind} captured from {', '.join(missing)} in the last forward pass "
                               f"(did the module run?)")
        return tuple(values)

    @property
    def hidden(self):
        """The hidden states of the last forward pass, in the order given (None if none asked)."""
        return self._get("hidden") if self._specs["hidden"] else None

    @property
    def attentions(self):
        """The attention maps of the last forward pass, in the order given (None if none asked)."""
        return self._get("attentions") if self._specs["attentions"] else None

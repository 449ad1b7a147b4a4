"""genrec's classes in transformers' Auto classes, registered when transformers first imports those.

``import genrec`` must stay cheap (``genrec --help`` pays for it) yet leave ``AutoConfig``,
``AutoModelForSeq2SeqLM``, ``AutoModel``, ``AutoTokenizer`` (and PEFT's Auto classes, built on them) able to
load genrec folders with ``trust_remote_code=False``. Registering eagerly would import torch and T5's
modeling code on every ``import genrec``. Instead an import hook waits for transformers' own auto modules:
when ``configuration_auto`` / ``tokenization_auto`` / ``modeling_auto`` finishes importing (or at once, if it
already has), genrec registers its configs / tokenizer / models into it. Whoever can reach an Auto class has
imported its module, so no lookup can come first.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

_AUTO = "transformers.models.auto."


def _register_configs(module) -> None:
    from .modeling.configuration_genrec_t5 import GenRecT5Config
    from .quantizer.config import CrossModalRQVAEConfig

    for config in (GenRecT5Config, CrossModalRQVAEConfig):
        module.AutoConfig.register(config.model_type, config, exist_ok=True)


def _register_tokenizer(module) -> None:
    from .modeling.configuration_genrec_t5 import GenRecT5Config
    from .tokenizer.semantic_id import SemanticIDTokenizer

    # AutoTokenizer.from_pretrained then finds the class by the name saved in tokenizer_config.json
    module.AutoTokenizer.register(GenRecT5Config, tokenizer_class=SemanticIDTokenizer, exist_ok=True)


class _StandIn(type):
    """Metaclass of a stand-in for a model class whose module is not imported yet: any attribute
    (``from_pretrained``, ``config_class``, ...), a call or an ``isinstance`` test imports it and defers to it.
    ``modeling_auto`` is often imported from inside T5's own modeling module (transformers' modeling layers
    import the Auto classes), where importing genrec's T5 subclass would be a circular import."""

    def __getattr__(cls, name):
        return getattr(cls.resolve(), name)

    def __call__(cls, *args, **kwargs):
        return cls.resolve()(*args, **kwargs)

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.resolve())


def _model_class(module_name: str, class_name: str):
    """The class if its module is imported already, else a stand-in of the same name."""
    module = sys.modules.get(module_name)
    if module is not None and hasattr(module, class_name):
        return getattr(module, class_name)
    resolve = staticmethod(lambda: getattr(importlib.import_module(module_name), class_name))
    return _StandIn(class_name, (), {"resolve": resolve, "__module__": module_name})


def _register_models(module) -> None:
    from .modeling.configuration_genrec_t5 import GenRecT5Config
    from .quantizer.config import CrossModalRQVAEConfig

    # the mappings' own register: the Auto classes' register would read the stand-in's config_class
    for auto, config, (module_name, name) in (
        (
            module.AutoModelForSeq2SeqLM,
            GenRecT5Config,
            (__package__ + ".modeling.modeling_genrec_t5", "GenRecT5ForConditionalGeneration"),
        ),
        (module.AutoModel, CrossModalRQVAEConfig, (__package__ + ".quantizer.model", "CrossModalRQVAE")),
    ):
        auto._model_mapping.register(config, _model_class(module_name, name), exist_ok=True)


def _register_pipeline_task(module) -> None:
    from .hf_pipeline import register

    register(module)


REGISTRATIONS = {
    _AUTO + "configuration_auto": _register_configs,
    _AUTO + "tokenization_auto": _register_tokenizer,
    _AUTO + "modeling_auto": _register_models,
    "transformers.pipelines": _register_pipeline_task,  # pipeline("next-item-recommendation", model=...)
}
# genrec's modules that define what is registered: importing one may import an auto module halfway through
# (T5Config's module imports configuration_auto), when the registration cannot import it yet; it is retried
# once that module is complete.
_DEFINING = {
    f"{__package__}.modeling.configuration_genrec_t5",
    f"{__package__}.quantizer.config",
    f"{__package__}.tokenizer.semantic_id",
}
_pending: list = []


def _register(register, module) -> None:
    try:
        register(module)
    except ImportError:  # a circular import: one of _DEFINING is still being imported
        _pending.append((register, module))


def _retry_pending(_module=None) -> None:
    todo = list(_pending)
    _pending.clear()  # a retry may import another defining module, which retries what is left
    for register, module in todo:
        _register(register, module)


class _ThenRegister(importlib.abc.Loader):
    """The module's own loader, followed by its registration."""

    def __init__(self, loader, register):
        self.loader, self.register = loader, register

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.register(module)


class _AutoImportHook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        register = REGISTRATIONS.get(fullname)
        if register is not None:
            register = lambda module, register=register: _register(register, module)  # noqa: E731
        elif fullname in _DEFINING:
            register = _retry_pending
        else:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader, register)
        return spec


def install() -> None:
    """Register into the auto modules transformers has imported; hook the others."""
    for name, register in REGISTRATIONS.items():
        if name in sys.modules:
            _register(register, sys.modules[name])
    if not any(isinstance(f, _AutoImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _AutoImportHook())

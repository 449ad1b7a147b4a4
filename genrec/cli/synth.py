"""genrec synth: write the built-in (synthetic) dataset."""

from dataclasses import fields

from .arguments import add_output_arguments


def add_arguments(p):
    from ..data.synth import SynthConfig

    add_output_arguments(p, "output dataset directory")
    defaults = SynthConfig()
    for f in fields(SynthConfig):
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(getattr(defaults, f.name)),
            default=None,
            help=f"(default {getattr(defaults, f.name)})",
        )


def run(args):
    from ..data import load_dataset_dir
    from ..data.synth import SynthConfig, write_synthetic_dataset

    overrides = {f.name: getattr(args, f.name) for f in fields(SynthConfig) if getattr(args, f.name) is not None}
    out = write_synthetic_dataset(args.out, SynthConfig(**overrides), overwrite=args.overwrite)
    print(f"wrote SYNTHETIC dataset: {load_dataset_dir(out, quiet=True).summary_line()}")

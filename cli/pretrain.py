"""``lod3d pretrain``: self-supervised (masked-autoencoder) pretraining of an encoder."""

from __future__ import annotations

import click

from lod3d.errors import InputError

from .options import model_spec, torch_device


@click.command("pretrain")
@click.option("--scene", "scenes", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Simulated scene directory (its truth/ortho.tif, dsm.tif, dtm.tif; labels unused); repeatable.")
@click.option("--raster", "rasters", multiple=True, nargs=2, type=click.Path(exists=True, dir_okay=False),
              metavar="ORTHO NDSM", help="Any user ortho + nDSM pair; repeatable.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Encoder checkpoint to write (.pt).")
@click.option("--arch", default="Unet", show_default=True, help="Architecture the encoder is meant for (DPT for ViTs).")
@click.option("--encoder", default="tu-tf_efficientnet_lite0", show_default=True)
@click.option("--decoder-channels", default="128,64,32,16,16", show_default=True,
              help="Decoder widths of the reconstruction network (CNN objective); '' for default.")
@click.option("--channels", default="pan,ndsm", show_default=True)
@click.option("--steps", type=int, default=300, show_default=True)
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--patch", type=int, default=256, show_default=True)
@click.option("--mask-ratio", type=click.FloatRange(0.05, 0.95), default=0.75, show_default=True)
@click.option("--lr", type=float, default=1.5e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
def command(scenes, rasters, out, arch, encoder, decoder_channels, channels, steps, batch, patch, mask_ratio, lr,
            seed, device, threads) -> None:
    """Masked-autoencoder pretraining on unlabelled tiles (MAE for ViTs, masked modelling for CNNs)."""
    import torch

    from lod3d.raster import Raster
    from lod3d.segment.inputs import stack_channels
    from lod3d.segment.pretrain import PretrainConfig, pretrain, save_pretrained
    from lod3d.segment.train import load_scene

    if not scenes and not rasters:
        raise InputError("no data: give --scene DIR and/or --raster ORTHO NDSM")
    torch.set_num_threads(threads)
    dev = torch_device(device)
    spec = model_spec(arch, encoder, channels, decoder_channels)
    tiles = [load_scene(s, spec.channels).x for s in scenes]
    tiles += [stack_channels(Raster.read(o, band=None), Raster.read(n), spec.channels, o, n) for o, n in rasters]
    config = PretrainConfig(steps=steps, batch=batch, patch=patch, lr=lr, mask_ratio=mask_ratio, seed=seed, device=dev)
    model, history = pretrain(spec, tiles, config)
    save_pretrained(out, model, spec, history, data=list(scenes) + [o for o, _ in rasters])
    click.echo(f"{history['objective']}: loss {history['loss_first']:.4f} -> {history['loss_last']:.4f}; wrote {out}")

"""``lod3d train``: fine-tune a building segmentation model on labelled rasters."""

from __future__ import annotations

import json

import click

from lod3d.errors import InputError

from .options import model_spec, torch_device


@click.command("train")
@click.option("--scene", "scenes", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Simulated scene directory (its truth/ rasters); repeatable.")
@click.option("--pair", "pairs", multiple=True, nargs=3, type=click.Path(exists=True, dir_okay=False),
              metavar="ORTHO NDSM MASK", help="A user's ortho, nDSM and building mask; repeatable.")
@click.option("--val-scene", "val_scenes", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Held-out scene to report IoU on; repeatable.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Checkpoint to write (.pt).")
@click.option("--arch", default="Unet", show_default=True, help="smp architecture (Unet, FPN, Segformer, DPT...).")
@click.option("--encoder", default="tu-tf_efficientnet_lite0", show_default=True,
              help="Encoder (tu-<timm name>, mit_b0 for Segformer, tu-vit_* with DPT).")
@click.option("--decoder-channels", default="128,64,32,16,16", show_default=True,
              help="Decoder widths, comma-separated ('' for the architecture's default).")
@click.option("--channels", default="pan,ndsm", show_default=True,
              help="Input channels: pan or red,green,blue; nir, ndvi; ndsm.")
@click.option("--init", default="imagenet", show_default=True,
              help="Encoder init: random, imagenet (EfficientNet-Lite0) or a weights file "
                   "(lod3d pretrain output, timm, DINOv3, TerraMind v1, MAE or Prithvi-style state dict).")
@click.option("--labels", "label_fraction", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0,
              show_default=True, help="Fraction of 32x32 label blocks kept (label-efficiency runs).")
@click.option("--steps", type=int, default=300, show_default=True)
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--patch", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--loss", default="bce+dice", show_default=True, help="Terms among bce, focal, dice, lovasz joined by '+'.")
@click.option("--boundary-weight", type=float, default=2.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU compute threads.")
@click.option("--note", default=None,
              help="Free text kept in the checkpoint's training metadata (e.g. the seeds and commands that "
                   "made the data).")
def command(scenes, pairs, val_scenes, out, arch, encoder, decoder_channels, channels, init, label_fraction,
            steps, batch, patch, lr, loss, boundary_weight, seed, device, threads, note) -> None:
    """Train a building segmentation model; writes a checkpoint with its metadata."""
    import torch

    from lod3d.segment.checkpoint import save_checkpoint
    from lod3d.segment.inputs import NORMALIZATION
    from lod3d.segment.train import TrainConfig, evaluate, load_pair, load_scene, restrict_labels, train

    if not scenes and not pairs:
        raise InputError("no training data: give --scene DIR and/or --pair ORTHO NDSM MASK")
    torch.set_num_threads(threads)
    dev = torch_device(device)
    spec = model_spec(arch, encoder, channels, decoder_channels)
    samples = [load_scene(s, spec.channels) for s in scenes] + [load_pair(*p, spec.channels) for p in pairs]
    samples = restrict_labels(samples, label_fraction, seed=seed)
    config = TrainConfig(steps=steps, batch=batch, patch=patch, lr=lr, loss=loss,
                         boundary_weight=boundary_weight, seed=seed, device=dev)
    model, history = train(spec, samples, config, init=init)
    history.update(data=[s.name for s in samples], label_fraction=label_fraction)
    if note:
        history["note"] = note
    if val_scenes:
        metrics = evaluate(model, [load_scene(s, spec.channels) for s in val_scenes], device=dev)
        history["validation"] = metrics
        click.echo(f"validation IoU {metrics['iou']:.4f} on {len(val_scenes)} held-out scene(s)")
    save_checkpoint(out, model, spec, normalization=NORMALIZATION, training=history)
    click.echo(json.dumps({"out": out, "init": history["init"], "loss_first": round(history["loss_first"], 4),
                           "loss_last": round(history["loss_last"], 4)}))

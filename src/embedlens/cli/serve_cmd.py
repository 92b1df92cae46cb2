"""``embedlens serve``: the local browser explorer."""

from __future__ import annotations

import click

from ..errors import EmbedlensError
from ..models.specs import DEFAULT_MODEL
from .common import MODEL_HELP, SPACE_HELP
from .device_options import device_options, max_memory_option


@click.command("serve")
@click.option("--model", "-m", "models", multiple=True, metavar="M",
              help=MODEL_HELP + " Give it twice to compare two models side by side.")
@click.option("--space", "spaces", multiple=True, metavar="S",
              help=SPACE_HELP + " May be given twice; with --model, input/output pick the model's space and any "
                                "other space is shown beside the model.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="Labels file (one per line) for a --space matrix file.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback makes the explorer reachable from other machines.")
@click.option("--token", envvar="EMBEDLENS_TOKEN", default=None, metavar="TEXT",
              help="Token the explorer asks for (the printed URL carries it). Off loopback a random one is made "
                   "when none is given; on loopback none is asked for unless given. Also EMBEDLENS_TOKEN.")
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in the default browser.")
@click.option("--corpus", default="lee", show_default=True, metavar="PATH_OR_NAME",
              help="Corpus counted for the colour-by-frequency view (file, folder, lee or enwiki-sample).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every projection.")
@click.option("--knn", "knn", type=click.Choice(("auto", "build", "off")), default="auto", show_default=True,
              help="Neighbour look-ups from the space's exact k-NN graph (embedlens knn): auto uses it once there "
                   "is one (cached, or built when the page opens: clusters and the t-SNE map need it), build "
                   "builds the exact 100-NN graph at start-up, off always scans the whole matrix.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write the explorer as a static folder instead of serving it (open DIR/index.html, no server): "
                   "the default map, search, every token's nearest neighbours, clusters, selection and export.")
@click.option("--export-k", type=int, default=20, show_default=True,
              help="With --export: nearest neighbours stored per token (1-200).")
@device_options
@max_memory_option
def serve_command(models: tuple[str, ...], spaces: tuple[str, ...], labels: str | None, port: int, host: str,
          open_browser: bool, corpus: str, seed: int, knn: str, export_dir: str | None, export_k: int,
          device: str, dtype: str, token: str | None, max_memory: str | None = None) -> None:
    """Explore a vocabulary in the browser: map, search, neighbours, variants, prompts, layers, grid.

    \b
    embedlens serve                                    # SmolLM2's input embeddings on http://127.0.0.1:8765/
    embedlens serve --model smollm2-135m --space glove-50d     # a model beside word vectors
    embedlens serve --model smollm2-135m --model gemma3-270m   # two models, linked panels
    embedlens serve --port 0 --open                    # any free port, open the browser

    Everything is served locally (no CDN); the page works with no network. The page opens on a cached
    t-SNE map of the space (`embedlens map --all --method tsne` writes one); without one it opens on PCA
    while the space's k-NN graph, its clusters and a t-SNE map are computed in the background (cached in
    $EMBEDLENS_CACHE: the next start opens on the t-SNE map at once).
    """
    if export_dir is not None:
        write_export(models, spaces, labels, export_dir, export_k, corpus, seed)
        return
    # lazy: `embedlens --help` and every other command import nothing of the explorer (tests/test_cli_basic.py)
    from ..models.runtime import set_defaults
    from ..serve import create_app, serve
    from ..serve.access import access_token
    from ..serve.server import is_loopback
    from ..serve.setup import build_knn_indexes, open_panels

    token = access_token(is_loopback(host), token)
    if not is_loopback(host):
        click.echo(f"embedlens: note: listening on {host}: other machines can reach this port; the explorer "
                   "asks for its token (in the printed URL). Use --host 127.0.0.1 to keep it local.", err=True)
    set_defaults(device, dtype, max_memory)  # the prompt, layer and grid views run the network there (restored on exit)
    pairs = open_panels(list(models), list(spaces), labels, default_model=DEFAULT_MODEL)
    app = create_app(pairs, corpus=corpus, seed=seed, allowed_hosts=None if is_loopback(host) else ["*"],
                     knn=knn != "off", token=token)
    if knn == "build":
        build_knn_indexes(app.state.explorer)
    names = ", ".join(p.title for p in app.state.explorer.panels)

    def announce(url: str) -> None:
        click.echo(f"embedlens: serving {names} on {url}  (Ctrl-C to stop)", err=True)
        click.echo(url)

    try:
        serve(app, host=host, port=port, open_browser=open_browser, announce=announce, token=token)
    finally:
        set_defaults(None, None)


def write_export(models: tuple[str, ...], spaces: tuple[str, ...], labels: str | None, out_dir: str, k: int,
                 corpus: str, seed: int) -> None:
    """Open the spaces and call :func:`embedlens.serve.export.export_site`; prints the page's path."""
    # lazy: as in serve: the explorer is imported by its own command only
    from ..serve.export import check_export_k, check_export_target, export_site
    from ..serve.setup import open_panels
    try:  # bad input is refused before the model is read
        check_export_target(out_dir)
        check_export_k(k)
    except EmbedlensError as exc:
        raise EmbedlensError(str(exc).replace("`out_dir`", "DIR").replace("`k`", "--export-k")) from None
    views = open_panels(list(models), list(spaces), labels, default_model=DEFAULT_MODEL)
    result = export_site(views, out_dir, k=k, corpus=corpus, seed=seed, progress=True)
    m = result.manifest
    maps = ", ".join(f"{s['title']}: {s['map']['method']} map" + (" (no t-SNE/UMAP map cached)" if s["map"]["stand_in"] else "")
                     for s in m["spaces"])
    click.echo(f"embedlens: wrote {result.total_bytes / 1e6:.1f} MB in {m['timings']['total_s']:.1f} s ({maps}, "
               f"{m['k']} neighbours per token); open it from any folder or static host", err=True)
    click.echo(str(result.path / "index.html"))


@click.command("export-site")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--model", "-m", "models", multiple=True, metavar="M",
              help=MODEL_HELP + " Give it twice to compare two models side by side.")
@click.option("--space", "spaces", multiple=True, metavar="S", help=SPACE_HELP + " May be given twice.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="Labels file (one per line) for a --space matrix file.")
@click.option("--corpus", default="lee", show_default=True, metavar="PATH_OR_NAME",
              help="Corpus counted for the colour-by-frequency view (file, folder, lee or enwiki-sample).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the maps and clusters.")
@click.option("--export-k", "export_k", type=int, default=20, show_default=True,
              help="Nearest neighbours stored per token (1-200).")
def export_site_command(out_dir: str, models: tuple[str, ...], spaces: tuple[str, ...], labels: str | None,
                        corpus: str, seed: int, export_k: int) -> None:
    """Write the explorer as a static folder: `embedlens serve --export DIR` under its own name.

    \b
    embedlens export-site smollm2-map                  # then open smollm2-map/index.html
    embedlens export-site out --model gemma3-270m --export-k 50

    The folder opens from file:// or any static host, with no server and no network: the default map
    (a cached t-SNE/UMAP map, else PCA), its labels and clusters, search, the nearest neighbours of every
    token, selection, CSV/JSON export and links. Prompts, layers, the grid and other maps need
    `embedlens serve`. The first export of a space builds its exact k-NN graph (cached).
    """
    write_export(models, spaces, labels, out_dir, export_k, corpus, seed)

"""``embedlens serve``: the local browser explorer."""

from __future__ import annotations

import click

from ..models.specs import DEFAULT_MODEL
from .common import MODEL_HELP, SPACE_HELP
from .device_options import device_options


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
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in the default browser.")
@click.option("--corpus", default="lee", show_default=True, metavar="PATH_OR_NAME",
              help="Corpus counted for the colour-by-frequency view (file, folder, lee or enwiki-sample).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every projection.")
@click.option("--knn", "knn", type=click.Choice(("auto", "build", "off")), default="auto", show_default=True,
              help="Neighbour look-ups from the space's exact k-NN graph (embedlens knn): auto uses it once there "
                   "is one (cached, or built when the page opens: clusters and the t-SNE map need it), build "
                   "builds the exact 100-NN graph at start-up, off always scans the whole matrix.")
@device_options
def serve(models: tuple[str, ...], spaces: tuple[str, ...], labels: str | None, port: int, host: str,
          open_browser: bool, corpus: str, seed: int, knn: str, device: str, dtype: str) -> None:
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
    from ..serve.server import is_loopback
    from ..serve.setup import open_panels

    if not is_loopback(host):
        click.echo(f"embedlens: warning: listening on {host}: anyone who can reach this machine on port "
                   f"{port or '(chosen)'} can use the explorer. Use --host 127.0.0.1 to keep it local.", err=True)
    from ..models.runtime import set_defaults

    set_defaults(device, dtype)  # the prompt, layer and grid views run the network there (restored on exit)
    pairs = open_panels(list(models), list(spaces), labels, default_model=DEFAULT_MODEL)
    from ..serve import create_app
    from ..serve import serve as run_server

    app = create_app(pairs, corpus=corpus, seed=seed, allowed_hosts=None if is_loopback(host) else ["*"],
                     knn=knn != "off")
    if knn == "build":
        from ..serve.setup import build_knn_indexes

        build_knn_indexes(app.state.explorer)
    names = ", ".join(p.title for p in app.state.explorer.panels)

    def announce(url: str) -> None:
        click.echo(f"embedlens: serving {names} on {url}  (Ctrl-C to stop)", err=True)
        click.echo(url)

    try:
        run_server(app, host=host, port=port, open_browser=open_browser, announce=announce)
    finally:
        set_defaults(None, None)

"""The `qa` command: ingest, delete, list, ask, serve and eval."""

from __future__ import annotations

import functools
import itertools
import json
import sys
from pathlib import Path

import click

from qa.engines import EngineChoice
from qa.errors import QAError
from qa.settings import BY_NAME, Setting

# Documents `qa list` reads at a time.
LIST_PAGE = 1000


class _SettingValue(click.ParamType):
    """An option's text turned into its setting's value by the setting's own parser."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.name = setting.kind

    def convert(self, value, param, ctx):
        try:
            return self.setting.value(value)
        except QAError as error:
            self.fail(error.message.replace(self.setting.env, f"--{param.name.replace('_', '-')}"), param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return f"[{'|'.join(self.setting.choices)}]" if self.setting.kind == "choice" else self.setting.kind.upper()


def _option(name: str, *flags: str, **extra):
    """A CLI option backed by the declared setting of the same name: unset on the command
    line, it takes the setting's ``QA_*`` variable, read by the same parser as the app's."""
    setting = BY_NAME[name]
    if setting.kind == "flag":
        extra.setdefault("is_flag", True)
    else:
        extra.setdefault("type", _SettingValue(setting))
    return click.option(
        *flags or (f"--{name.lower().replace('_', '-')}",), default=setting.from_environment,
        show_default=str(setting.default) if setting.default is not None else False,
        help=f"{setting.help} [env {setting.env}]", **extra,
    )


def _engine_options(command):
    """The options that say where the index lives (--index, --engine, --milvus-uri,
    --milvus-token), handed to ``command`` as one ``choice``."""

    @functools.wraps(command)
    def with_choice(*args, index: Path, engine: str, milvus_uri: str | None, milvus_token: str | None, **kwargs):
        return command(*args, choice=EngineChoice(engine, index, milvus_uri, milvus_token), **kwargs)

    for name in ("MILVUS_TOKEN", "MILVUS_URI", "ENGINE"):
        with_choice = _option(name)(with_choice)
    return _option("INDEX", type=click.Path(path_type=Path))(with_choice)


@click.group()
@click.version_option(package_name="qa")
def cli() -> None:
    """Answer questions from a folder of documents."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_engine_options
@_option("MODEL")
@_option("DEVICE")
@click.option("--replace", is_flag=True, help="Drop every document not in PATHS instead of keeping it.")
@click.option("--id", "doc_id", help="Store the one file given under this id instead of its path.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Read, chunk and embed on a Ray cluster at ADDRESS (no address: QA_RAY_ADDRESS, else a "
                   "local Ray).")
@click.option("--ray-workers", type=click.IntRange(1), default=None,
              help="Ray actors embedding passages (default: one per GPU, else one per 4 CPUs).")
def ingest(paths: tuple[Path, ...], choice: EngineChoice, model: str | None, device: str | None, replace: bool,
           doc_id: str | None, ray_address: str | None, ray_workers: int | None) -> None:
    """Index .txt, .md, .html and .pdf files under PATHS (files or folders).

    A document is known by its path from the folder named (or its file name), and
    ingesting it again replaces it; unchanged documents are not embedded again."""
    from qa.embedding import DEFAULT_MODEL, Embedder
    from qa.ingest import ingest as run_ingest

    progress = sys.stderr.isatty()
    if ray_address == "local":  # --ray without an address
        ray_address = BY_NAME["RAY_ADDRESS"].from_environment() or "local"
    skipped = lambda reason: click.echo(f"skipped {reason}", err=True)  # noqa: E731
    if ray_address is not None:
        from qa.distributed import RayPlan, ingest_on_ray

        if doc_id is not None:
            raise click.UsageError("--id names one file: ingest it without --ray")
        plan = RayPlan(None if ray_address == "local" else ray_address, ray_workers)
        report = ingest_on_ray(paths, choice, lambda: Embedder(model or DEFAULT_MODEL, device), plan, replace=replace,
                               progress=progress, on_skip=skipped)
    else:
        report = run_ingest(paths, choice, Embedder(model or DEFAULT_MODEL, device), replace=replace,
                            progress=progress, doc_id=doc_id, on_skip=skipped)
    click.echo(
        f"stored {report.stored} document(s) ({report.unchanged} unchanged) in {report.seconds:.1f} s; "
        f"{choice.describe()} now holds {report.documents} document(s), {report.passages} passage(s)"
    )


@cli.command()
@click.argument("doc_ids", nargs=-1, required=True)
@_engine_options
def delete(doc_ids: tuple[str, ...], choice: EngineChoice) -> None:
    """Remove the documents DOC_IDS from the index."""
    from qa.engines import open_engine
    from qa.ingest import delete_documents

    engine = open_engine(choice)
    try:
        deleted = delete_documents(engine, list(doc_ids))
        engine.save()
    finally:
        engine.close()
    for doc_id in doc_ids:
        click.echo(f"deleted {doc_id}" if doc_id in deleted else f"not found: {doc_id}", err=doc_id not in deleted)
    if len(deleted) < len(doc_ids):
        sys.exit(1)


@cli.command("list")
@_engine_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per document.")
def list_documents(choice: EngineChoice, as_json: bool) -> None:
    """List the documents in the index: id, passages, title."""
    from qa.engines import open_engine
    from qa.web.documents import summary_json

    engine = open_engine(choice)
    try:
        for first in itertools.count(0, LIST_PAGE):
            _, documents = engine.documents(first, LIST_PAGE)
            for document in documents:
                if as_json:
                    click.echo(json.dumps(summary_json(document), ensure_ascii=False))
                else:
                    click.echo(f"{document.doc_id}\t{document.passages}\t{document.title}")
            if len(documents) < LIST_PAGE:
                break
    finally:
        engine.close()


@cli.command()
@click.argument("question")
@click.option("-k", "k", default=5, show_default=True, help="How many passages to return (1-50).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON response.")
@click.option("--source", help="Only documents from this source.")
@click.option("--doc-id-prefix", help="Only documents whose id begins so.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Only documents whose metadata KEY has VALUE; repeat a KEY for any of several values.")
@_engine_options
@_option("MODEL")
@_option("BACKEND")
def ask(question: str, k: int, mode: str, as_json: bool, source: str | None, doc_id_prefix: str | None,
        meta: tuple[str, ...], choice: EngineChoice, model: str | None, backend: str) -> None:
    """Print the passages that best answer QUESTION, answer sentence first."""
    from qa.filters import SearchFilter
    from qa.search import SearchRequest
    from qa.service import Service

    request = SearchRequest.parse(question, k, mode, SearchFilter.from_query(_filter_args(source, doc_id_prefix, meta)))
    response = Service.open(choice, model, backend).search(request)
    if as_json:
        from qa.web.api import response_json

        click.echo(json.dumps(response_json(response), ensure_ascii=False, indent=2))
        return
    if not response.results:
        click.echo("No passage matches that question.")
    for result in response.results:
        click.echo(f"{result.rank}. {result.answer.text}")
        page = f", page {result.page}" if result.page else ""
        click.echo(f"   {result.section or result.title} ({result.source}{page}), score {result.score:.3f}\n")


def _filter_args(source: str | None, doc_id_prefix: str | None, meta: tuple[str, ...]) -> dict[str, list[str]]:
    """``qa ask``'s filter options as the URL parameters ``SearchFilter.from_query`` reads."""
    args: dict[str, list[str]] = {}
    if source is not None:
        args["source"] = [source]
    if doc_id_prefix is not None:
        args["doc_id_prefix"] = [doc_id_prefix]
    for pair in meta:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--meta")
        args.setdefault(f"meta.{key}", []).append(value)
    return args


@cli.command()
@_option("HOST")
@_option("PORT")
@_option("WORKERS")
@_option("THREADS")
@_engine_options
@_option("MODEL")
@_option("BACKEND")
@_option("QUESTION_CACHE")
@_option("LOG_QUERIES")
def serve(host: str, port: int, workers: int, threads: int, choice: EngineChoice, model: str | None, backend: str,
          question_cache: int, log_queries: bool) -> None:
    """Serve the API and the search page: waitress, or gunicorn with --workers above 1."""
    config = {"INDEX": str(choice.index), "ENGINE": choice.engine, "MILVUS_URI": choice.milvus_uri,
              "MILVUS_TOKEN": choice.milvus_token, "MODEL": model, "BACKEND": backend,
              "QUESTION_CACHE": question_cache, "LOG_QUERIES": log_queries}
    click.echo(f"serving {choice.describe()} on http://{host}:{port}/ with {workers} worker(s)", err=True)
    from qa.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts; gunicorn's workers inherit it
    if workers > 1:
        from qa.web import workers as gunicorn_workers

        gunicorn_workers.serve(config, host, port, workers, threads)
        return
    import waitress

    from qa.web import create_app

    app = create_app(config)
    service = app.extensions["qa.service"]
    opened = f" (index opened in {service.opened.index_s:.2f} s, model in {service.opened.model_s:.2f} s)" \
        if service.opened else ""
    click.echo(f"{service.status().passages} passages loaded{opened}; ready", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="qa")


@cli.command("eval")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which qrels/<split>.tsv to score.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "dense", "lexical"]),
              help="Mode to score; repeat for several.  [default: all three]")
@click.option("--fusion", "fusions", multiple=True, type=click.Choice(["convex", "rrf"]),
              help="How hybrid mode fuses; repeat to compare.  [default: convex]")
@click.option("--k", "depth", default=100, show_default=True, type=click.IntRange(1, 1000),
              help="Documents ranked per question.")
@click.option("--cache", type=click.Path(path_type=Path), default=Path("index/eval"), show_default=True,
              help="Where indexes of evaluated corpora are kept for reuse.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the figures here as JSON.")
@_option("MODEL")
@_option("BACKEND")
@_option("DEVICE")
@_option("ENGINE")
@_option("MILVUS_URI")
@_option("MILVUS_TOKEN")
def evaluate(dataset_dir: Path, split: str, modes: tuple[str, ...], fusions: tuple[str, ...], depth: int,
             cache: Path, json_path: Path | None, model: str | None, backend: str, device: str | None, engine: str,
             milvus_uri: str | None, milvus_token: str | None) -> None:
    """Score retrieval on a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/).

    The corpus is indexed once per model and chunking under --cache (with --engine milvus,
    in collections named after that folder) and reused."""
    from qa import evaluation
    from qa.beir import load_beir
    from qa.chunking import ChunkSettings
    from qa.embedding import DEFAULT_MODEL, Embedder
    from qa.fusion import Fusion
    from qa.search import Searcher

    dataset = load_beir(dataset_dir, split)
    embedder = Embedder(model or DEFAULT_MODEL, device, backend=backend, cache_size=0)
    settings = ChunkSettings()
    root = evaluation.eval_index_path(cache, dataset_dir, embedder.name, settings)
    progress = sys.stderr.isatty()
    choice = EngineChoice(engine, root, milvus_uri, milvus_token)
    searcher = Searcher(evaluation.open_eval_index(dataset, choice, embedder, settings, progress), embedder)
    searcher.warm_up()
    reports = []
    for mode in modes or ("hybrid", "dense", "lexical"):
        for method in (fusions or ("convex",)) if mode == "hybrid" else ("",):
            searcher.fusion = Fusion(method) if method else Fusion()
            report = evaluation.evaluate(searcher, dataset, mode, depth, progress)
            if fusions:
                report.mode = f"{mode} {method}".strip()
            reports.append(report)
    click.echo(evaluation.format_table(dataset, reports))
    if json_path:
        figures = {"dataset": dataset.name, "split": split, "index": choice.describe(),
                   "modes": [r.as_dict() for r in reports]}
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except QAError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(1)

"""The web demo (``genrec app``, and the Space that ``genrec push --space`` writes): a Gradio page over one
``GenRecPipeline``. Search items by title, pick some as a history, see the recommendations with titles,
scores and the modality whose beams found each; the cold-start panel adds a new item like a picked one
and shows where it lands for the same history.

Element ids (``elem_id``) are part of the page's contract: the browser test drives the page by them.
"""

from __future__ import annotations

import html
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import GenRecError
from .batcher import new_model_thread
from .search import ItemSearch

SEARCH_RESULTS = 12


def _label(catalog, item_id) -> str:
    info = catalog.describe(item_id)
    title = info.get("title") or "(no title)"
    return f"{title} [{item_id}]"


def _table(catalog, item_ids, extra_columns=(), table_id: str = "") -> str:
    """An HTML table of items (their title, brand) with ``extra_columns`` [(header, values)]."""
    head = "".join(
        f"<th>{html.escape(h)}</th>" for h in ["#", "item", "title", "brand", *[c for c, _ in extra_columns]]
    )
    rows = []
    for n, item in enumerate(item_ids):
        info = catalog.describe(item)
        cells = [n + 1, item, info.get("title", ""), info.get("brand", ""), *[v[n] for _, v in extra_columns]]
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        rows.append(f'<tr class="item" data-item-id="{html.escape(str(item))}">{tds}</tr>')
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


class DemoState:
    """What the page's callbacks share: the pipeline and the search index. Gradio calls back on threads of
    its own; every pipeline call goes through ``model_thread`` (the thread that loaded the model, see
    ``serving.batcher``), one at a time, so a cold-start edit never races a ranking."""

    def __init__(self, pipeline, model_thread: ThreadPoolExecutor | None = None):
        self.pipeline = pipeline
        self.catalog = pipeline.tokenizer.catalog
        self.search = ItemSearch(self.catalog, pipeline.item_prior.get("counts"))
        self.thread = model_thread or new_model_thread()

    def on_model_thread(self, fn, *args, **kwargs):
        return self.thread.submit(fn, *args, **kwargs).result()

    def matches(self, query: str) -> list[tuple[str, str]]:
        rows = self.search.search(query, SEARCH_RESULTS)
        return [(_label(self.catalog, self.catalog.item_ids[r]), str(self.catalog.item_ids[r])) for r in rows]

    def item(self, key: str):
        """The catalogue's item id for a checkbox value (ids travel through the page as text)."""
        return self.catalog.item_ids[self.catalog.row(key)]

    def recommend(self, history: list, k: int, modality: str) -> str:
        if not history:
            return "<p id='recommendations'>Pick at least one item for the history first.</p>"
        rec = self.on_model_thread(self.pipeline.recommend, history, k=int(k), modality=modality)
        columns = [("score", [f"{s:.3f}" for s in rec.scores]), ("found by", ["+".join(s) for s in rec.sources])]
        return _table(self.catalog, rec.item_ids, columns, "recommendations")

    def add_like(self, history: list, like: str, new_id: str, title: str, k: int) -> str:
        """Add ``new_id`` with IDs one last-level code away from item ``like`` in each modality, then show
        where it ranks for ``history`` among the model's ``num_beams``."""
        if not (new_id or "").strip() or not like:
            return "<p id='cold-start'>Give the new item an id and pick an item it resembles.</p>"
        try:
            self.on_model_thread(self._add_like, like, new_id.strip(), title)
        except GenRecError as e:
            return f"<p id='cold-start'>{html.escape(str(e))}</p>"
        if not history:
            return f"<p id='cold-start'>Added {html.escape(new_id)}. Pick a history to see where it lands.</p>"
        width = self.pipeline.ranking_config.num_beams
        rec = self.on_model_thread(self.pipeline.recommend, history, k=width)
        where = rec.item_ids.index(new_id.strip()) + 1 if new_id.strip() in rec.item_ids else None
        place = f"rank {where} of {width}" if where else f"not in the top {width}"
        return f"<p id='cold-start'>Added {html.escape(new_id)}: {place} for this history.</p>"

    def _add_like(self, like: str, new_id: str, title: str) -> None:
        ids = {m: self._free_id_like(m, self.catalog.row(like)) for m in self.catalog.modalities}
        self.pipeline.add_items([new_id], semantic_ids=ids, display=[{"title": title}])

    def _free_id_like(self, modality: str, row: int) -> np.ndarray:
        """[1, levels]: ``row``'s ID with the last code changed to one no item has (-1s if it has none)."""
        codes = self.catalog.codes[modality]
        if codes[row, 0] < 0:
            return np.full((1, codes.shape[1]), -1)
        siblings = codes[(codes[:, :-1] == codes[row, :-1]).all(1)]
        free = sorted(set(range(self.catalog.codebook_sizes[modality])) - set(siblings[:, -1].tolist()))
        if not free:
            raise GenRecError(f"every {modality} ID next to item {self.catalog.item_ids[row]!r} is taken")
        return np.array([[*codes[row, :-1], free[0]]])


def build_demo(pipeline, title: str = "genrec", model_thread: ThreadPoolExecutor | None = None):
    """The Gradio Blocks page (call ``.launch()`` on it); ``model_thread``: see ``DemoState``."""
    import gradio as gr

    state = DemoState(pipeline, model_thread)
    modalities = ["fused", *state.catalog.modalities]
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {html.escape(title)}\nGenerative next-item recommendation over {len(state.catalog)} items.")
        history = gr.State([])
        with gr.Row():
            query = gr.Textbox(label="Search items by title", elem_id="search")
            search = gr.Button("Search", elem_id="search-button")
        picks = gr.CheckboxGroup(choices=[], label="Matching items", elem_id="matches")
        with gr.Row():
            add = gr.Button("Add to history", elem_id="add-to-history")
            clear = gr.Button("Clear history", elem_id="clear-history")
        shown = gr.HTML("<p id='history'>No history yet.</p>")
        with gr.Row():
            k = gr.Slider(1, pipeline.ranking_config.num_beams, value=10, step=1, label="k", elem_id="k")
            modality = gr.Radio(modalities, value="fused", label="modality", elem_id="modality")
        go = gr.Button("Recommend", variant="primary", elem_id="recommend")
        out = gr.HTML(elem_id="recommendations-panel")
        with gr.Accordion("Cold start: add a new item like a picked one", open=False, elem_id="cold-start-panel"):
            new_id = gr.Textbox(label="new item id", elem_id="new-item-id")
            new_title = gr.Textbox(label="title", elem_id="new-item-title")
            place = gr.Button("Add and rank", elem_id="add-item")
            landed = gr.HTML()

        search.click(lambda q: gr.CheckboxGroup(choices=state.matches(q), value=[]), query, picks)
        query.submit(lambda q: gr.CheckboxGroup(choices=state.matches(q), value=[]), query, picks)

        def extend(h, chosen):
            h = h + [state.item(c) for c in chosen if state.item(c) not in h]
            return h, _table(state.catalog, h, table_id="history")

        add.click(extend, [history, picks], [history, shown])
        clear.click(lambda: ([], "<p id='history'>No history yet.</p>"), None, [history, shown])
        go.click(state.recommend, [history, k, modality], out)
        place.click(
            lambda h, chosen, i, t, kk: state.add_like(h, chosen[0] if chosen else None, i, t, kk),
            [history, picks, new_id, new_title, k],
            landed,
        )
    return demo

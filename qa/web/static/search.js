// The search form without a page reload: asks /api/search, builds the markup that
// search.html renders on the server, and keeps /?q=... in the address bar so links
// and the back button work. Text goes in with textContent only, never as HTML.
(function () {
  "use strict";

  const form = document.getElementById("search");
  const input = document.getElementById("q");
  const modeSelect = document.getElementById("mode");
  const sourceSelect = document.getElementById("source");  // only when the index holds several sources
  const answers = document.getElementById("answers");
  const spinner = document.getElementById("spinner");
  const intro = answers.querySelector(".intro");
  const SPINNER_DELAY_MS = 150;
  let inFlight = null;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // text[start:end] as text nodes, the question's words in <b class="term">
  // (the same cut as pieces() in qa/web/pages.py).
  function marked(parent, text, start, end, matches) {
    let at = start;
    for (const [matchStart, matchEnd] of matches) {
      const from = Math.max(matchStart, at), to = Math.min(matchEnd, end);
      if (from >= to) continue;
      if (from > at) parent.append(text.slice(at, from));
      parent.append(element("b", "term", text.slice(from, to)));
      at = to;
    }
    if (at < end) parent.append(text.slice(at, end));
    return parent;
  }

  function documentLink(result, query) {
    const id = result.doc_id.split("/").map(encodeURIComponent).join("/");
    const ordinal = result.passage_id.slice(result.passage_id.lastIndexOf("#") + 1);
    const params = new URLSearchParams({ passage: ordinal, q: query });
    return "/documents/" + id + "?" + params.toString() + "#chosen";
  }

  function resultItem(result, query) {
    const item = element("li", "result");
    const heading = element("h2");
    const link = element("a", "title", result.title || result.doc_id);
    link.href = documentLink(result, query);
    heading.append(link);
    const parts = [heading];
    if (result.section) parts.push(element("p", "section", result.section));
    const source = element("p", "source");
    if (result.source) source.append(element("span", "where", result.source), " · ");
    if (result.page) {
      const label = "page " + result.page;
      if (/^https?:\/\//.test(result.source)) {
        const page = element("a", "page", label);
        page.href = result.source + "#page=" + result.page;
        source.append(page, " · ");
      } else source.append(element("span", "page", label), " · ");
    }
    source.append("score " + result.score.toFixed(3));
    parts.push(source);
    const { text, answer, matches } = result;
    const passage = element("p", "passage");
    marked(passage, text, 0, answer.start, matches);
    passage.append(marked(element("mark", "answer"), text, answer.start, answer.end, matches));
    marked(passage, text, answer.end, text.length, matches);
    item.append(...parts, passage);
    return item;
  }

  function showResults(body) {
    const count = body.results.length;
    const nodes = [element("p", "meta",
      `${count} passage${count === 1 ? "" : "s"} in ${body.took_ms} ms (${body.mode})`)];
    if (!count) {
      nodes.push(element("p", "empty", "No passage matches that question. Try other words, or another mode."));
    }
    const list = element("ol", "results");
    for (const result of body.results) list.append(resultItem(result, body.query));
    nodes.push(list);
    answers.replaceChildren(...nodes);
    document.title = body.query + " · qa";
  }

  function showError(message) {
    const error = element("p", "error", message);
    error.setAttribute("role", "alert");
    answers.replaceChildren(error);
  }

  function showIntro() {
    answers.replaceChildren(...(intro ? [intro] : []));
    document.title = "qa";
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (ignored) { /* not JSON: fall through */ }
    return `The server failed to answer (HTTP ${response.status}). Try again, or see the server's log.`;
  }

  async function search(query, mode, source, remember) {
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    const params = new URLSearchParams({ q: query, mode: mode });
    if (source) params.set("source", source);
    if (remember) history.pushState(null, "", "/?" + params.toString());
    const timer = setTimeout(() => { spinner.hidden = false; }, SPINNER_DELAY_MS);
    answers.setAttribute("aria-busy", "true");
    try {
      const response = await fetch("/api/search?" + params.toString(), {
        signal: controller.signal, headers: { Accept: "application/json" },
      });
      if (response.ok) showResults(await response.json());
      else showError(await errorMessage(response));
    } catch (error) {
      if (error.name === "AbortError") return;
      showError("The server could not be reached. Check that qa is running, then try again.");
    } finally {
      clearTimeout(timer);
      if (inFlight === controller) {
        inFlight = null;
        spinner.hidden = true;
        answers.removeAttribute("aria-busy");
      }
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search(input.value, modeSelect.value, sourceSelect ? sourceSelect.value : "", true);
  });

  window.addEventListener("popstate", () => {
    const params = new URLSearchParams(location.search);
    input.value = params.get("q") || "";
    modeSelect.value = params.get("mode") || "hybrid";
    if (sourceSelect) sourceSelect.value = params.get("source") || "";
    if (params.has("q")) search(input.value, modeSelect.value, params.get("source") || "", false);
    else showIntro();
  });
})();

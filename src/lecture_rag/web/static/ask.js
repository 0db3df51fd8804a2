// Ask page: stream the answer, list the segments, play the cited second.
// The question lives in the address (/?q=…): a link to it asks it again; this browser keeps its
// recent questions (localStorage, never sent anywhere).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const button = $("ask-button");
  const cancel = $("cancel-button");
  const status = $("status");
  const elapsed = $("elapsed");
  const playerBox = $("player");
  const PLAYER_HINT = "Toque numa citação [n], numa referência ou num trecho para ver o vídeo no segundo citado.";
  const RECENT_KEY = "lecture-rag.recent";
  const RECENT_MAX = 8;
  const play = (item) => LR.play(playerBox, item);
  let controller = null;
  let ticker = null;
  // Timings (ms since navigation start) for the page's own measurements and the browser tests.
  window.lectureRagTimings = {};

  function reset() {
    $("result").hidden = false;
    $("answer").replaceChildren();
    $("answer").classList.add("streaming");
    $("answer-error").hidden = true;
    $("references").replaceChildren();
    $("hits").replaceChildren();
    $("extractive-badge").hidden = true;
    $("extractive-note").hidden = true;
    $("fallback").hidden = true;
    $("fallback-answer").replaceChildren();
    LR.clearPlayer(playerBox, PLAYER_HINT);
  }

  // Why the LLM's answer is flagged, in the words a student understands ("" when it is not).
  function flagged(answer) {
    if (answer.error) return "O LLM não respondeu";
    if (answer.off_language) return "O LLM respondeu em outro idioma";
    if (answer.invalid_citations && answer.invalid_citations.length) return "O LLM citou trechos que não existem";
    if (answer.no_citations) return "O LLM não citou os trechos das aulas";
    return "";
  }

  // Beside a flagged or failed LLM answer, the extractive one the engine offers (its [n] are the hits).
  function showFallback(answer) {
    if (!answer.fallback) return;
    const why = flagged(answer) || "A resposta do LLM está vazia";
    $("fallback-why").textContent = `${why}: confira a resposta extrativa abaixo, tirada das aulas.`;
    LR.renderAnswer($("fallback-answer"), answer.fallback, answer.hits, play);
    $("fallback").hidden = false;
  }

  function showError(message) {
    $("answer-error").textContent = message;
    $("answer-error").hidden = false;
  }

  function finish(answer) {
    const box = $("answer");
    box.classList.remove("streaming");
    LR.renderAnswer(box, answer.answer, answer.context, play);
    LR.renderReferences($("references"), answer.references, play);
    LR.renderHits($("hits"), answer.hits, play);
    $("extractive-badge").hidden = !answer.extractive;
    $("extractive-note").hidden = !answer.extractive;
    // The cause (a timeout, a refused connection) is in the server log and `lecture-rag llm check`.
    if (answer.error) showError("O LLM não respondeu a tempo. Abaixo, os trechos das aulas que tratam da pergunta.");
    else if (answer.abstained) status.textContent = "As aulas não parecem responder a esta pergunta.";
    if (!answer.extractive) LR.refreshLLM(); // the server heard how this answer went
    showFallback(answer);
  }

  function startClock(label) {
    const started = performance.now();
    const tick = () => {
      elapsed.textContent = `${Math.floor((performance.now() - started) / 1000)} s`;
    };
    status.textContent = label;
    tick();
    clearInterval(ticker);
    ticker = setInterval(tick, 1000);
  }

  function stopClock() {
    clearInterval(ticker);
    ticker = null;
    elapsed.textContent = "";
  }

  function recent() {
    try {
      const list = JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
      return Array.isArray(list) ? list.filter((q) => typeof q === "string").slice(0, RECENT_MAX) : [];
    } catch (_) {
      return [];
    }
  }

  function remember(question) {
    const list = [question, ...recent().filter((q) => q !== question)].slice(0, RECENT_MAX);
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
    showRecent();
  }

  function showRecent() {
    const list = recent();
    $("recent").hidden = list.length === 0;
    $("recent-list").replaceChildren(...list.map((q) => LR.el("li", {},
      LR.el("button", { type: "button", className: "linkish", on: { click: () => askFor(q) } }, q))));
  }

  function askFor(question) {
    $("question").value = question;
    form.requestSubmit();
  }

  // The question in the address bar, so the page can be shared and reloaded.
  function putInAddress(question) {
    const url = new URL(window.location.href);
    if (url.searchParams.get("q") === question) return;
    url.searchParams.set("q", question);
    window.history.pushState({}, "", url);
  }

  async function fillFilter() {
    try {
      const videos = await LR.api("GET", "/api/videos");
      const courses = [...new Set(videos.map((v) => v.course).filter(Boolean))].sort();
      $("course").append(...courses.map((c) => LR.el("option", { value: c }, c)));
      $("video").append(...videos.map((v) => LR.el("option", { value: v.video_id }, v.title || v.video_id)));
      const params = new URLSearchParams(window.location.search);
      if (params.get("curso")) $("course").value = params.get("curso");
      if (params.get("aula")) $("video").value = params.get("aula");
    } catch (_) {
      // no filter: every lecture is searched
    }
  }

  async function ask(event) {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) return;
    const timings = (window.lectureRagTimings = { submit: performance.now() });
    reset();
    putInAddress(question);
    remember(question);
    button.disabled = true;
    cancel.hidden = false;
    controller = new AbortController();
    startClock("Buscando nas aulas…");
    const body = {
      question, k: Number($("k").value) || undefined, mode: $("mode").value,
      course: $("course").value || undefined, video: $("video").value || undefined,
    };
    try {
      await LR.postEvents("/api/ask", body, {
        hits: (data) => {
          timings.hits = performance.now();
          LR.renderHits($("hits"), data.hits, play);
          status.textContent = data.hits.length ? "Escrevendo a resposta…" : "Nenhum trecho encontrado.";
        },
        token: (data) => {
          if (timings.firstToken === undefined) timings.firstToken = performance.now();
          $("answer").append(document.createTextNode(data.text));
        },
        done: (answer) => {
          timings.done = performance.now();
          finish(answer);
          if (!answer.abstained) status.textContent = "Pronto.";
        },
        error: () => {
          timings.done = performance.now();
          showError("Não foi possível responder agora. Tente de novo em instantes.");
          status.textContent = "";
        },
      }, controller.signal);
    } catch (err) {
      if (err.name === "AbortError") {
        status.textContent = "Pergunta cancelada.";
        $("answer").classList.remove("streaming");
      } else {
        showError("Não foi possível falar com o servidor. Confira a conexão e tente de novo.");
        status.textContent = "";
      }
    } finally {
      stopClock();
      controller = null;
      cancel.hidden = true;
      button.disabled = false;
      document.body.dataset.state = "done";
    }
  }

  form.addEventListener("submit", (event) => {
    document.body.dataset.state = "asking";
    ask(event);
  });
  cancel.addEventListener("click", () => controller && controller.abort());
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  $("recent-clear").addEventListener("click", () => {
    localStorage.removeItem(RECENT_KEY);
    showRecent();
  });
  window.addEventListener("popstate", () => {
    const q = new URLSearchParams(window.location.search).get("q");
    if (q) askFor(q);
  });
  showRecent();
  fillFilter().then(() => {
    const q = new URLSearchParams(window.location.search).get("q");
    if (q && q.trim()) askFor(q);
  });
})();

// Ask page: stream the answer, list the segments, play the cited second.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const button = $("ask-button");
  const status = $("status");
  const playerBox = $("player");
  const play = (item) => LR.play(playerBox, item);
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
    if (answer.error) showError(`O LLM falhou: ${answer.error}`);
    else if (answer.abstained) status.textContent = "As aulas não parecem responder a esta pergunta.";
    showFallback(answer);
  }

  async function ask(event) {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) return;
    const timings = (window.lectureRagTimings = { submit: performance.now() });
    reset();
    button.disabled = true;
    status.textContent = "Buscando nas aulas…";
    const body = { question, k: Number($("k").value) || undefined, mode: $("mode").value };
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
        error: (data) => {
          timings.done = performance.now();
          showError(data.message);
          status.textContent = "";
        },
      });
    } catch (err) {
      showError(err.message);
      status.textContent = "";
    } finally {
      button.disabled = false;
      document.body.dataset.state = "done";
    }
  }

  form.addEventListener("submit", (event) => {
    document.body.dataset.state = "asking";
    ask(event);
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
})();

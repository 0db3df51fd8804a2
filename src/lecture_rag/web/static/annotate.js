// Annotation page: one record at a time, labels by click or key, automated label revealed after choosing.
"use strict";

(() => {
  const NAME_KEY = "lecture-rag.annotator";
  const $ = (id) => document.getElementById(id);
  const run = document.body.dataset.run;
  const playerBox = $("player");
  const play = (item) => LR.play(playerBox, item);
  const state = { records: [], index: 0, annotator: "", saving: false };

  function mine(record) {
    return record.annotations[state.annotator] || null;
  }

  function updateProgress() {
    const done = state.records.filter(mine).length;
    $("progress").max = state.records.length;
    $("progress").value = done;
    $("progress-text").textContent = `${done}/${state.records.length} anotadas por você`;
    $("finished").hidden = done < state.records.length;
    document.body.dataset.annotated = String(done);
  }

  function showJudge(record) {
    const ar = record.answer_relevance;
    if (ar && ar.score !== null && ar.score !== undefined) {
      $("ar-score").textContent = Number(ar.score).toFixed(2);
      $("ar-reasoning").textContent = ar.reasoning;
    } else {
      $("ar-score").textContent = "n/d";
      $("ar-reasoning").textContent = ar ? `(${ar.error || "sem nota"})` : "(nenhum juiz configurado)";
    }
    const own = mine(record);
    if (!own) $("auto-label").textContent = "Oculta até você escolher um rótulo.";
    else $("auto-label").textContent = `${record.auto_label || "nenhuma (sem juiz)"} · seu rótulo: ${own.label}`;
  }

  function show(index) {
    state.index = Math.max(0, Math.min(index, state.records.length - 1));
    const record = state.records[state.index];
    const answer = record.answer;
    $("record").dataset.qid = record.qid;
    $("record-title").textContent =
      `Pergunta ${record.number} · registro ${state.index + 1} de ${state.records.length} · ${record.qid}`;
    $("record-question").textContent = record.question;
    LR.renderHits($("hits"), answer.hits, play);
    $("hits-count").textContent = String(answer.hits.length);
    $("evidence").open = false;
    $("reference-answer").textContent = record.reference || "";
    $("reference-box").hidden = !record.reference;
    $("no-reference").hidden = Boolean(record.reference);
    LR.renderAnswer($("answer"), answer.error ? "" : answer.answer, answer.context, play);
    $("answer-error").textContent = answer.error ? `Erro do LLM: ${answer.error}` : "";
    $("answer-error").hidden = !answer.error;
    $("extractive-badge").hidden = !answer.extractive;
    LR.renderReferences($("references"), answer.references, play);
    showJudge(record);
    const own = mine(record);
    $("comment").value = own ? own.comment : "";
    for (const b of document.querySelectorAll(".label-button")) {
      b.classList.toggle("chosen", Boolean(own) && own.label === b.dataset.label);
    }
  }

  async function label(code) {
    if (state.saving || !state.records.length) return;
    const record = state.records[state.index];
    const comment = $("comment").value.trim();
    state.saving = true;
    try {
      const saved = await LR.api("POST", `/api/runs/${encodeURIComponent(run)}/annotations`,
        { qid: record.qid, label: code, comment, annotator: state.annotator });
      record.annotations[state.annotator] = { label: saved.label, comment: saved.comment, at: "" };
      record.auto_label = saved.auto_label;
      record.auto_label_hidden = false;
      const auto = saved.auto_label ? `anotação automatizada: ${saved.auto_label}` : "sem anotação automatizada";
      $("saved").textContent = `Pergunta ${record.number} gravada como ${saved.label} (${auto}).`;
      updateProgress();
      if (state.index < state.records.length - 1) show(state.index + 1);
      else show(state.index);
    } catch (err) {
      if (err.status === 401) {
        LR.setToken("");
        setup(`${err.message}`);
      } else {
        $("saved").textContent = `Não foi gravado: ${err.message}`;
      }
    } finally {
      state.saving = false;
    }
  }

  function onKey(event) {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    if ($("workspace").hidden) return;
    const key = event.key.toLowerCase();
    const button = document.querySelector(`.label-button[data-key="${CSS.escape(key)}"]`);
    if (button) {
      event.preventDefault();
      label(button.dataset.label);
    } else if (event.key === "ArrowRight") {
      event.preventDefault();
      show(state.index + 1);
    } else if (event.key === "ArrowLeft") {
      event.preventDefault();
      show(state.index - 1);
    }
  }

  async function load() {
    const data = await LR.api("GET",
      `/api/runs/${encodeURIComponent(run)}/records?annotator=${encodeURIComponent(state.annotator)}`);
    state.records = data.records;
    $("annotator-name").textContent = state.annotator;
    $("workspace").hidden = false;
    updateProgress();
    if (state.records.length) show(Math.min(data.first_pending, state.records.length - 1));
    document.body.dataset.ready = "1";
  }

  function setup(message) {
    $("setup").hidden = false;
    $("workspace").hidden = true;
    $("need-name").hidden = Boolean(state.annotator);
    $("need-token").hidden = Boolean(LR.token());
    if (message) {
      $("load-error").textContent = message;
      $("load-error").hidden = false;
    }
  }

  function start() {
    state.annotator = localStorage.getItem(NAME_KEY) || "";
    if (!state.annotator || !LR.token()) {
      setup("");
      return;
    }
    $("setup").hidden = true;
    $("load-error").hidden = true;
    load().catch((err) => setup(err.message));
  }

  $("setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("annotator-input").value.trim();
    if (name) localStorage.setItem(NAME_KEY, name);
    const token = $("token-input").value.trim();
    if (token) LR.setToken(token);
    start();
  });
  $("change-name").addEventListener("click", (event) => {
    event.preventDefault();
    localStorage.removeItem(NAME_KEY);
    state.annotator = "";
    $("annotator-input").value = "";
    setup("");
  });
  for (const b of document.querySelectorAll(".label-button")) {
    b.addEventListener("click", () => label(b.dataset.label));
  }
  document.addEventListener("keydown", onKey);
  LR.ready.then(start);
})();

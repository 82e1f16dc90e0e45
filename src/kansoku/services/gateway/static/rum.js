// Real-user monitoring for the storefront and admin pages (written here; no build step).
//
// What it records, and posts in batches to the gateway's intake at /rum (docs/rum.md
// describes the wire format):
// - Web Vitals, measured as Google's web-vitals library measures them: LCP, CLS, INP,
//   FCP and TTFB, each with its rating by web-vitals' thresholds;
// - uncaught JavaScript errors and unhandled promise rejections;
// - page views, and key actions: elements and forms marked `data-rum-action`;
// - browser spans: a key action's form is sent with fetch and a W3C `traceparent`, and so
//   are the page's own fetch and XHR calls to this site, so the gateway's span of that
//   request is the child of the browser's. A span is named after the key action that
//   sent it (the form's, or the marked element just clicked, as the lab's buttons whose
//   own script fetches); other requests are "fetch GET", "xhr POST" ….
// Nothing a user types is read: forms are sent as they are, to their own action, and
// only names, timings and the page's path (never its query) leave the page.
"use strict";

(() => {
  // A key action's answer can replace the document (document.write), which runs this
  // file again in the same window: the first run keeps measuring.
  if (window.__kansokuRum) return;

  const INTAKE = "/rum";
  // web-vitals' thresholds: good up to the first, poor above the second.
  const THRESHOLDS = {
    LCP: [2500, 4000], INP: [200, 500], CLS: [0.1, 0.25], FCP: [1800, 3000], TTFB: [800, 1800],
  };
  const FLUSH_DELAY_MS = 5000;   // batch what happens within a few seconds
  const MAX_EVENTS = 50;         // per batch (the intake takes up to 100)
  const MAX_BATCH_BYTES = 48000; // under the 64 KiB a beacon may carry
  const MAX_ERRORS = 10;         // per page view: a loop of errors is one story
  const ACTION_NAME = /^[a-z][a-z0-9-]{0,47}$/;
  const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

  const nativeFetch = window.fetch.bind(window);
  const utf8 = new TextEncoder();
  const epochMs = (performanceTime = performance.now()) => performance.timeOrigin + performanceTime;

  /** Run `work`, and never let a failure of the monitoring break the page. */
  function guard(work) {
    try {
      return work();
    } catch {
      return undefined;
    }
  }

  function randomHex(bytes) {
    const values = crypto.getRandomValues(new Uint8Array(bytes));
    if (values.every((value) => value === 0)) values[0] = 1; // all-zero ids are invalid
    return Array.from(values, (value) => value.toString(16).padStart(2, "0")).join("");
  }

  /** At most `length` characters, and well-formed (a lone surrogate is not JSON). */
  function clip(text, length) {
    let value = String(text ?? "");
    if (value.toWellFormed) value = value.toWellFormed();
    return value.length <= length ? value : value.slice(0, length).replace(/[\ud800-\udbff]$/, "");
  }

  const session = guard(() => {
    const key = "kansoku.rum.session";
    let id = sessionStorage.getItem(key);
    if (!/^[0-9a-f]{32}$/.test(id || "")) {
      id = randomHex(16);
      sessionStorage.setItem(key, id);
    }
    return id;
  }) || randomHex(16); // storage blocked: a session per page

  const navigation = guard(() => performance.getEntriesByType("navigation")[0]);
  const activationStart = navigation?.activationStart || 0;
  let firstHidden = document.visibilityState === "hidden" ? 0 : Infinity;

  // --- the page view being measured ------------------------------------------------------

  let page = null;

  /**
   * Start measuring a page view. `start` is its performance time: entries before it
   * belong to an earlier page view of this window.
   */
  function startPage(navigationType, start = 0, path = location.pathname) {
    page = {
      id: randomHex(8),
      path: clip(path, 2048),
      start,
      // LCP, FCP and TTFB belong to a document's load; a restored or replaced page has none.
      loaded: navigationType !== "back_forward_cache" && navigationType !== "replace",
      queue: [],
      timer: 0,
      lcp: null,
      lcpReported: false,
      fcpReported: false,
      cls: 0,
      clsWindow: 0,
      clsWindowFirst: 0,
      clsWindowLast: 0,
      clsReported: null,
      interactions: new Map(),
      longest: [],
      interactionsBefore: performance.interactionCount || 0,
      minInteractionId: Infinity,
      maxInteractionId: 0,
      inpReported: null,
      errors: 0,
      errorKeys: new Set(),
    };
    add({ kind: "page_view", time: epochMs(), navigation_type: navigationType });
  }

  function add(event) {
    page.queue.push(event);
    if (page.queue.length >= MAX_EVENTS) flush(false);
    else if (!page.timer) page.timer = setTimeout(() => guard(() => flush(false)), FLUSH_DELAY_MS);
  }

  /** Send what is queued; `leaving`: the page may be gone next, so use a beacon. */
  function flush(leaving) {
    clearTimeout(page.timer);
    page.timer = 0;
    while (page.queue.length) {
      const events = [];
      let size = 0;
      while (page.queue.length && events.length < MAX_EVENTS) {
        const length = utf8.encode(JSON.stringify(page.queue[0])).length;
        if (events.length && size + length > MAX_BATCH_BYTES) break;
        events.push(page.queue.shift());
        size += length;
      }
      send(JSON.stringify({
        session_id: session, page_view_id: page.id, path: page.path, sent_at: epochMs(),
        events,
      }), leaving);
    }
  }

  function send(body, leaving) {
    // A beacon outlives the page; sent as a string it is text/plain, which the intake
    // accepts (a JSON Blob is not "CORS-safelisted" and some browsers refuse it).
    if (leaving && guard(() => navigator.sendBeacon(INTAKE, body))) return;
    nativeFetch(INTAKE, {
      method: "POST", body, keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
    }).catch(() => {}); // monitoring never becomes the page's error
  }

  // --- Web Vitals ---------------------------------------------------------------------

  function report(name, value) {
    const [good, poor] = THRESHOLDS[name];
    const rounded = name === "CLS" ? Math.round(value * 10000) / 10000 : Math.round(value * 10) / 10;
    const measured = Math.min(Math.max(rounded, 0), 3600000);
    const rating = measured <= good ? "good" : measured > poor ? "poor" : "needs-improvement";
    add({ kind: "web_vital", time: epochMs(), name, value: measured, rating });
  }

  const observers = {};

  function observe(type, handle, options = {}) {
    guard(() => {
      if (!PerformanceObserver.supportedEntryTypes?.includes(type)) return;
      const observer = new PerformanceObserver((list) => guard(() => handle(list.getEntries())));
      observer.observe({ type, buffered: true, ...options });
      observers[type] = observer;
    });
  }

  function onPaint(entries) {
    for (const entry of entries) {
      if (entry.name !== "first-contentful-paint" || !page.loaded || page.fcpReported) continue;
      page.fcpReported = true;
      if (entry.startTime < firstHidden) report("FCP", Math.max(entry.startTime - activationStart, 0));
    }
  }

  function onLargestContentfulPaint(entries) {
    if (!page.loaded || page.lcpReported) return;
    for (const entry of entries) {
      if (entry.startTime < firstHidden) page.lcp = Math.max(entry.startTime - activationStart, 0);
    }
  }

  // The largest paint so far is final once the user interacts or the page is hidden.
  function finishLargestContentfulPaint() {
    if (!page.loaded || page.lcpReported) return;
    const pending = observers["largest-contentful-paint"]?.takeRecords();
    if (pending) onLargestContentfulPaint(pending);
    if (page.lcp === null) return;
    page.lcpReported = true;
    report("LCP", page.lcp);
  }

  // CLS: layout shifts without recent input, grouped in session windows (shifts less than
  // 1 s apart, a window at most 5 s long); the page's CLS is its worst window.
  function onLayoutShift(entries) {
    for (const entry of entries) {
      if (entry.hadRecentInput || entry.startTime < page.start) continue;
      if (page.clsWindow && entry.startTime - page.clsWindowLast < 1000
          && entry.startTime - page.clsWindowFirst < 5000) {
        page.clsWindow += entry.value;
      } else {
        page.clsWindow = entry.value;
        page.clsWindowFirst = entry.startTime;
      }
      page.clsWindowLast = entry.startTime;
      page.cls = Math.max(page.cls, page.clsWindow);
    }
  }

  // INP: each interaction's latency is its longest event; the page's INP is the worst
  // one, or near the 98th percentile with many (one skipped per 50 interactions).
  function onEventTiming(entries) {
    for (const entry of entries) {
      if (!entry.interactionId || entry.startTime < page.start) continue;
      page.minInteractionId = Math.min(page.minInteractionId, entry.interactionId);
      page.maxInteractionId = Math.max(page.maxInteractionId, entry.interactionId);
      const known = page.interactions.get(entry.interactionId);
      if (known) {
        known.latency = Math.max(known.latency, entry.duration);
      } else if (page.longest.length < 10 || entry.duration > page.longest.at(-1).latency) {
        const interaction = { id: entry.interactionId, latency: entry.duration };
        page.interactions.set(interaction.id, interaction);
        page.longest.push(interaction);
      }
      page.longest.sort((a, b) => b.latency - a.latency);
      for (const dropped of page.longest.splice(10)) page.interactions.delete(dropped.id);
    }
  }

  function interactionToNextPaint() {
    if (!page.longest.length) return null;
    // Chromium counts interactions; elsewhere estimate from their ids (which grow by 7).
    const count = performance.interactionCount !== undefined
      ? performance.interactionCount - page.interactionsBefore
      : (page.maxInteractionId - page.minInteractionId) / 7 + 1;
    return page.longest[Math.min(page.longest.length - 1, Math.floor(count / 50))].latency;
  }

  /** The page is hidden, left or replaced: report what is final, and send it all. */
  function finishPage() {
    finishLargestContentfulPaint();
    const layoutShiftPending = observers["layout-shift"]?.takeRecords();
    if (layoutShiftPending) onLayoutShift(layoutShiftPending);
    if (page.cls !== page.clsReported) {
      page.clsReported = page.cls;
      report("CLS", page.cls);
    }
    const inp = interactionToNextPaint();
    if (inp !== null && inp !== page.inpReported) {
      page.inpReported = inp;
      report("INP", inp);
    }
    flush(true);
  }

  // --- errors ---------------------------------------------------------------------------

  let activeSpan = null; // the browser span in progress, for an error's trace id

  function scriptLocation(url) {
    return guard(() => {
      const parsed = new URL(url, location.href);
      return parsed.origin === location.origin ? parsed.pathname : parsed.origin + parsed.pathname;
    }) ?? null;
  }

  function recordError(type, message, stack, source, line, column, unhandledRejection) {
    const key = `${type}|${message}|${source}|${line}`;
    if (page.errors >= MAX_ERRORS || page.errorKeys.has(key)) return;
    page.errors += 1;
    page.errorKeys.add(key);
    const event = {
      kind: "error", time: epochMs(), type: clip(type || "Error", 100) || "Error",
      message: clip(message, 1000), unhandled_rejection: unhandledRejection,
    };
    if (stack) event.stack = clip(stack, 4000);
    if (source) event.source = clip(scriptLocation(source) ?? "", 2048);
    if (Number.isInteger(line) && line >= 0) event.line = line;
    if (Number.isInteger(column) && column >= 0) event.column = column;
    if (activeSpan) {
      event.trace_id = activeSpan.trace_id;
      event.span_id = activeSpan.span_id;
    }
    add(event);
  }

  function onError(event) {
    if (!(event instanceof ErrorEvent)) return; // a resource that failed to load
    const error = event.error;
    recordError(error?.name, error?.message ?? event.message, error?.stack, event.filename,
      event.lineno, event.colno, false);
  }

  function onUnhandledRejection(event) {
    const reason = event.reason;
    if (reason instanceof Error) {
      recordError(reason.name, reason.message, reason.stack, null, null, null, true);
    } else {
      recordError("UnhandledRejection", guard(() => String(reason)) ?? "", null, null, null, null,
        true);
    }
  }

  // --- browser spans: traceparent on this site's fetch and XHR calls -------------------

  function startSpan(name, method, path, action) {
    const span = {
      kind: "span", trace_id: randomHex(16), span_id: randomHex(8), name, start: epochMs(),
      end: 0, method, url: clip(path, 2048), status_code: 0,
    };
    if (action) span.action = action;
    activeSpan = span;
    return span;
  }

  const traceparent = (span) => `00-${span.trace_id}-${span.span_id}-01`;

  function endSpan(span, status) {
    span.end = Math.max(epochMs(), span.start);
    span.status_code = Number.isInteger(status) && status >= 0 && status <= 599 ? status : 0;
    if (activeSpan === span) activeSpan = null;
    add(span);
  }

  /** A same-origin URL that is not the intake, or null. */
  function tracedUrl(url) {
    return guard(() => {
      const parsed = new URL(url, location.href);
      return parsed.origin === location.origin && parsed.pathname !== INTAKE ? parsed : null;
    }) ?? null;
  }

  // The key action (a marked element, not a form) clicked in the task now running: the
  // page's own click or submit handlers may send its request with fetch or XHR.
  let clickedAction = null;

  /** A span for a request the page sends: named after the key action that sent it. */
  function requestSpan(api, method, path) {
    return clickedAction
      ? startSpan(clickedAction, method, path, clickedAction)
      : startSpan(`${api} ${method}`, method, path);
  }

  window.fetch = function fetch(input, init) {
    let span = null;
    let options = init;
    guard(() => {
      const request = input instanceof Request ? input : null;
      const url = tracedUrl(request ? request.url : String(input));
      const method = String(init?.method || request?.method || "GET").toUpperCase();
      const headers = new Headers(init?.headers ?? request?.headers);
      if (!url || !METHODS.has(method) || headers.has("traceparent")) return;
      span = requestSpan("fetch", method, url.pathname);
      headers.set("traceparent", traceparent(span));
      options = { ...init, headers };
    });
    const answer = nativeFetch(input, options);
    if (!span) return answer;
    return answer.then(
      (response) => { guard(() => endSpan(span, response.status)); return response; },
      (error) => { guard(() => endSpan(span, 0)); throw error; },
    );
  };

  const xhrRequests = new WeakMap();
  const nativeOpen = XMLHttpRequest.prototype.open;
  const nativeSend = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function open(method, url, ...rest) {
    guard(() => xhrRequests.set(this, { method: String(method).toUpperCase(), url: String(url) }));
    return nativeOpen.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function send(body) {
    guard(() => {
      const request = xhrRequests.get(this);
      const url = request && tracedUrl(request.url);
      if (!url || !METHODS.has(request.method)) return;
      const span = requestSpan("xhr", request.method, url.pathname);
      this.setRequestHeader("traceparent", traceparent(span));
      this.addEventListener("loadend", () => guard(() => endSpan(span, this.status)));
    });
    return nativeSend.call(this, body);
  };

  // --- key actions -----------------------------------------------------------------------

  const busyForms = new WeakSet();   // sent and not answered yet: a second click waits
  const nativeSubmits = new WeakSet(); // sent by the browser itself, as without this script

  function onClick(event) {
    const element = event.target instanceof Element ? event.target.closest("[data-rum-action]") : null;
    // A form's key action is counted when it is submitted.
    if (!element || element instanceof HTMLFormElement) return;
    const action = element.dataset.rumAction;
    if (!ACTION_NAME.test(action)) return;
    add({ kind: "click", time: epochMs(), action });
    // Listening in the capture phase, this runs before the page's own handlers; what they
    // send in this task is the action's. (A button's click submits its form in the same
    // task, so a submit handler's fetch counts too.)
    clickedAction = action;
    setTimeout(() => { if (clickedAction === action) clickedAction = null; }, 0);
  }

  function onSubmit(event) {
    const form = event.target;
    // Attributes, not properties: a field named "action" or "method" hides the form's own.
    const action = form instanceof HTMLFormElement ? form.getAttribute("data-rum-action") : null;
    if (!action) return;
    if (nativeSubmits.has(form)) {
      nativeSubmits.delete(form);
      return;
    }
    if (event.defaultPrevented || !ACTION_NAME.test(action)) return; // the page's own, or not ours
    if (busyForms.has(form)) {
      event.preventDefault();
      return;
    }
    add({ kind: "click", time: epochMs(), action });
    const submitter = event.submitter;
    const attribute = (name) => (submitter?.hasAttribute(`form${name}`)
      ? submitter.getAttribute(`form${name}`) : form.getAttribute(name)) || "";
    const method = (attribute("method") || "get").toUpperCase();
    const enctype = attribute("enctype").toLowerCase();
    const target = attribute("target");
    const url = tracedUrl(attribute("action") || location.href);
    // Only a POST to this site in this window goes through fetch; anything else (a search
    // form's GET, a form for a new tab) is the browser's own, with the click counted.
    if (method !== "POST" || !url || (target && target !== "_self") || enctype === "text/plain") return;

    let body;
    try {
      body = new FormData(form, submitter);
    } catch {
      body = new FormData(form);
    }
    if (enctype !== "multipart/form-data") body = new URLSearchParams(body);
    event.preventDefault();
    busyForms.add(form);
    form.setAttribute("aria-busy", "true");
    const span = startSpan(action, "POST", url.pathname, action);
    nativeFetch(url.href, {
      method: "POST", body, credentials: "same-origin", redirect: "follow",
      headers: { traceparent: traceparent(span), Accept: "text/html,application/xhtml+xml" },
    }).then(async (response) => {
      const answeredAfter = epochMs() - span.start;
      endSpan(span, response.status);
      if (response.redirected) {
        // Post/Redirect/Get: go where the answer went, as a page load of its own (with
        // its own vitals); the pagehide that follows sends what is queued.
        location.assign(response.url);
        return;
      }
      const body = await response.text();
      const path = new URL(response.url).pathname;
      if ((response.headers.get("Content-Type") || "").includes("text/html")) {
        replaceDocument(body, path, answeredAfter);
      } else {
        // Not a page (pages answer with one): show it as the browser would, as text.
        const shown = document.implementation.createHTMLDocument(`${response.status} ${response.statusText}`);
        shown.body.append(Object.assign(shown.createElement("pre"), { textContent: body }));
        replaceDocument(`<!doctype html>${shown.documentElement.outerHTML}`, path, answeredAfter);
      }
    }).catch(() => {
      // No answer (the network, or the server, is away): send the form the browser's way,
      // as without this script, so the person sees what the browser shows.
      guard(() => {
        if (span.end === 0) endSpan(span, 0);
        flush(false);
        busyForms.delete(form);
        form.removeAttribute("aria-busy");
        nativeSubmits.add(form);
        try {
          HTMLFormElement.prototype.requestSubmit.call(form, submitter || undefined);
        } catch {
          HTMLFormElement.prototype.submit.call(form);
        }
      });
    });
  }

  /** Show a key action's answer (a page with the form's errors) in place of this one. */
  function replaceDocument(html, path, timeToFirstByte) {
    guard(finishPage);
    const replacedAt = performance.now();
    document.open();
    document.write(html);
    document.close();
    // document.open() removes the window's and the document's listeners: listen again,
    // and measure the new content as a page view of its own.
    listen();
    startPage("replace", replacedAt, path);
    report("TTFB", timeToFirstByte);
  }

  // --- wiring -----------------------------------------------------------------------------

  function onVisibilityChange() {
    if (document.visibilityState !== "hidden") return;
    firstHidden = Math.min(firstHidden, performance.now());
    guard(finishPage);
  }

  function onPageHide() {
    guard(finishPage);
  }

  function onPageShow(event) {
    // Back from the back/forward cache: the same document, a new page view.
    if (event.persisted) guard(() => startPage("back_forward_cache", performance.now()));
  }

  function onFirstInput() {
    guard(finishLargestContentfulPaint);
  }

  // Named once, so listening again after document.open() never listens twice.
  const guarded = (handle) => (event) => guard(() => handle(event));
  const listeners = {
    error: guarded(onError),
    unhandledrejection: guarded(onUnhandledRejection),
    click: guarded(onClick),
    submit: guarded(onSubmit),
  };

  function listen() {
    window.addEventListener("error", listeners.error);
    window.addEventListener("unhandledrejection", listeners.unhandledrejection);
    window.addEventListener("pagehide", onPageHide);
    window.addEventListener("pageshow", onPageShow);
    document.addEventListener("visibilitychange", onVisibilityChange);
    document.addEventListener("click", listeners.click, true);
    document.addEventListener("submit", listeners.submit);
    for (const type of ["keydown", "click"]) {
      window.addEventListener(type, onFirstInput, { once: true, capture: true });
    }
  }

  Object.defineProperty(window, "__kansokuRum", { value: { session, version: 1 } });
  const navigationType = activationStart > 0 ? "prerender" : navigation?.type || "navigate";
  startPage(navigationType);
  listen();
  observe("paint", onPaint);
  observe("largest-contentful-paint", onLargestContentfulPaint);
  observe("layout-shift", onLayoutShift);
  observe("event", onEventTiming, { durationThreshold: 40 });
  observe("first-input", onEventTiming);
  if (navigation && navigation.responseStart > 0) {
    report("TTFB", Math.max(navigation.responseStart - activationStart, 0));
  }
})();

import { randomBytes } from 'node:crypto';
import { assetUrl } from './assets.js';

/**
 * The dashboard's pages: plain HTML, its scripts and stylesheet served from this server
 * (assets/, see assets.ts; no build step and nothing from elsewhere: codegod runs offline).
 * The server renders only the frame; each page's script reads the JSON API and builds the
 * DOM with `textContent` and `setAttribute`, never `innerHTML`, so text an LLM wrote
 * (titles, outputs, reasoning) is shown, never run. The few values the server itself puts
 * into the HTML go through `escapeHtml`. Every page is sent with a Content-Security-Policy
 * that allows only the script and stylesheet its frame tags with the page's nonce (and the
 * modules that script imports, which inherit the nonce) and connections to this origin, as a
 * second wall.
 */

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

type Nav = 'builds' | 'agents';

interface Frame {
  title: string;
  nav?: Nav;
  body: string;
  /** The page's script, a module under assets/. */
  script?: string;
  /** Attributes of <body>, already escaped by the caller through `attr`. */
  bodyAttrs?: string;
}

function attr(name: string, value: string): string {
  return ` ${name}="${escapeHtml(value)}"`;
}

function frame(nonce: string, f: Frame): string {
  const link = (href: string, label: string, key?: Nav) => `<a href="${href}"${key && f.nav === key ? ' class="active"' : ''}>${label}</a>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escapeHtml(f.title)} · codegod</title>
<link rel="stylesheet" nonce="${nonce}" href="${assetUrl('dashboard.css')}">
</head>
<body${f.bodyAttrs ?? ''}>
<header class="top"><a class="brand" href="/">codegod</a><nav>${link('/', 'Builds', 'builds')}${link('/agents', 'Agents', 'agents')}${link('/queues', 'Queues')}${link('/metrics', 'Metrics')}</nav></header>
<main>
${f.body}
</main>
${f.script ? `<script type="module" nonce="${nonce}" src="${assetUrl(f.script)}"></script>\n` : ''}</body>
</html>`;
}

export function buildsPage(nonce: string): string {
  return frame(nonce, {
    title: 'Builds',
    nav: 'builds',
    body: `<div id="errors"></div>
<form id="submit" class="card row" autocomplete="off">
  <textarea id="goal" name="goal" rows="1" placeholder="What should codegod build? e.g. Build a Flask + React app with a todo list" required></textarea>
  <button id="go" class="primary" type="submit">Start build</button>
</form>
<h2>Builds</h2>
<div class="card"><table>
  <thead><tr><th>Build</th><th>Goal</th><th>State</th><th>Progress</th><th>Age</th><th>Duration</th></tr></thead>
  <tbody id="builds"></tbody>
</table></div>`,
    script: 'builds.js',
  });
}

export function buildPage(nonce: string, buildId: string): string {
  return frame(nonce, {
    title: `Build ${buildId}`,
    nav: 'builds',
    bodyAttrs: attr('data-build-id', buildId),
    body: `<div id="errors"></div>
<div class="card">
  <div class="row"><h1 class="mono">${escapeHtml(buildId)}</h1><span id="state"></span><span id="conn" class="conn muted">connecting…</span><span class="spacer"></span>
    <button id="retry" class="danger" hidden>Retry failed tasks</button><button id="cancel" class="danger" hidden>Cancel build</button></div>
  <div id="goal"></div>
  <div id="summary" class="muted"></div>
  <div id="reason"></div>
  <div id="stats" class="stats"></div>
  <div id="progress"></div>
</div>
<div class="row">
  <h2>Tasks</h2><span class="spacer"></span>
  <div class="legend"><span><i class="lg-pending"></i>pending</span><span><i class="lg-queued"></i>queued</span><span><i class="lg-running"></i>running</span><span><i class="lg-succeeded"></i>succeeded</span><span><i class="lg-failed"></i>failed</span><span><i class="lg-muted"></i>skipped / cancelled</span><span><i class="lg-followup"></i>follow-up</span></div>
</div>
<div id="layout" class="layout">
  <div><div id="graph" class="graph-wrap"></div>
    <div id="report"></div>
    <h2>Events</h2><div id="events" class="card events"></div></div>
  <aside id="panel" class="panel" hidden>
    <div class="row"><h3 id="panel-title" class="mono"></h3><span id="panel-state"></span><span class="spacer"></span><button id="panel-close" type="button" aria-label="close">Close</button></div>
    <div id="panel-body"></div>
  </aside>
</div>`,
    script: 'build.js',
  });
}

export function agentsPage(nonce: string): string {
  return frame(nonce, {
    title: 'Agents',
    nav: 'agents',
    body: `<div id="errors"></div>
<h1>Agents</h1>
<p class="muted">Every worker process and the orchestrator, as they last reported: the state is the phase of an agent's oldest task (observing, reasoning, planning, acting, validating), else idle, backoff (a retry waits) or error (its last task failed); a heartbeat older than three periods marks an agent stale.</p>
<div class="card"><table>
  <thead><tr><th>Agent</th><th>Role</th><th>State</th><th>Current tasks</th><th>Heartbeat</th><th>Tasks done</th><th>Process</th></tr></thead>
  <tbody id="agents"></tbody>
</table></div>`,
    script: 'agents.js',
  });
}

/** A page without a script, for 401/404 answers to browsers. */
export function messagePage(nonce: string, title: string, lines: string[]): string {
  return frame(nonce, {
    title,
    body: `<div class="card"><h1>${escapeHtml(title)}</h1>${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('')}</div>`,
  });
}

/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core): sign in with
 * ?token=, start a build from the form, watch its DAG appear and its nodes change colour as
 * real agent workers run the tasks, see a follow-up task join the graph, open a task's trace,
 * and make sure text an LLM wrote is shown, never run. Leaves a screenshot in
 * test-artifacts/dashboard.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AGENT_STATES } from '../../shared/telemetry/agent-status.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOrchestrator, type OpenedOrchestrator } from '../../orchestrator/open-orchestrator.js';
import { createLogger } from '../../shared/logger.js';
import { TaskSpecSchema } from '../../shared/domain/plan.js';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';
import { ROOT } from '../helpers/processes.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'e2e-dashboard-token-5c4b3a29';
const XSS_TITLE = '<img src=x onerror="window.__xss=1">Write the API';

const task = (id: string, role: string, title: string, dependsOn: string[] = []) => ({ id, role, title, description: `Do ${id}`, dependsOn, acceptanceCriteria: [] });

const scenario = {
  rules: [
    {
      match: { phase: 'plan-dag' },
      reply: {
        summary: 'A small site: set up, write the API and the docs, verify.',
        tasks: [task('setup', 'backend', 'Set up the project'), task('api', 'backend', XSS_TITLE, ['setup']), task('docs', 'backend', 'Write the docs', ['setup']), task('verify', 'testing', 'Verify everything', ['api', 'docs'])],
      },
    },
    // Slow enough to see a task running before it succeeds.
    { match: { phase: 'reason' }, reply: REASON, delayMs: 1_200 },
    { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'notes/out.txt', content: 'done\n' } }]) },
    { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'notes/out.txt' }]) },
  ],
};

const RUNNING_FILL = 'rgb(254, 243, 199)';
const SUCCEEDED_FILL = 'rgb(220, 252, 231)';

let world: AgentWorld;
let orchestrator: OpenedOrchestrator;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the dashboard test needs Chromium at ${CHROMIUM} and it is missing: install it (apt-get install -y chromium)`);
  }
  world = await AgentWorld.start(scenario, { CODEGOD_API_TOKEN: TOKEN });
  [browser] = await Promise.all([
    chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
    world.startWorker('backend'),
    world.startWorker('testing'),
  ]);
  orchestrator = openOrchestrator(world.config, createLogger('silent'));
  await orchestrator.start();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await orchestrator?.close();
  await world?.close();
});

const node = (id: string) => page.locator(`svg.dag g.node[data-task="${id}"]`);
/** The browser's globals this test reads (the project's TypeScript has no DOM library). */
type PageGlobals = { getComputedStyle(el: unknown): { fill: string }; __xss?: number };
const fill = (id: string) => node(id).locator('rect.box').evaluate((el) => (globalThis as unknown as PageGlobals).getComputedStyle(el).fill);

describe('the dashboard', () => {
  it('shows a build live: nodes appear, run and turn green; a follow-up joins; a task panel shows its trace', async () => {
    await page.goto(`${orchestrator.httpUrl}/?token=${TOKEN}`);
    expect(new URL(page.url()).search).toBe('');
    await page.fill('#goal', 'Build a small site with an API and docs');
    await Promise.all([page.waitForURL(/\/builds\/b-[a-z0-9]+-[a-z0-9]+$/), page.click('#go')]);
    const buildId = new URL(page.url()).pathname.split('/').pop()!;

    await node('setup').and(page.locator('[data-state="running"]')).waitFor({ timeout: 20_000 });
    // Live updates redraw the graph; a node read while being replaced has no computed style yet.
    await expect.poll(() => fill('setup'), { timeout: 5_000 }).toBe(RUNNING_FILL);
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-running.png') });
    await expect.poll(() => node('verify').getAttribute('data-state')).toBe('pending');

    // What the testing agent does when it finds something missing: the DAG grows.
    await orchestrator.service.scheduler.grow(buildId, {
      tasks: [{ spec: TaskSpecSchema.parse(task('fix-api', 'backend', 'Install a missing package', ['api'])), depth: 1, origin: 'followup:api' }],
      blocks: [{ taskId: 'verify', waitFor: ['fix-api'] }],
    });
    await page.locator('svg.dag g.node.followup[data-task="fix-api"]').waitFor({ timeout: 10_000 });
    expect(await node('fix-api').locator('text.fu-text').textContent()).toBe('follow-up');

    await node('setup').and(page.locator('[data-state="succeeded"]')).waitFor({ timeout: 15_000 });
    await expect.poll(() => fill('setup'), { timeout: 5_000 }).toBe(SUCCEEDED_FILL);
    await page.locator('#state .badge.st-succeeded').waitFor({ timeout: 30_000 });
    for (const id of ['setup', 'api', 'docs', 'fix-api', 'verify']) expect(await node(id).getAttribute('data-state'), id).toBe('succeeded');
    expect(await page.locator('svg.dag path.edge').count()).toBe(6);
    // Columns by dependency depth: setup, then api and docs, then fix-api, then verify.
    const x = async (id: string) => Number((await node(id).getAttribute('transform'))!.match(/translate\(([\d.]+)/)![1]);
    expect(await x('setup')).toBeLessThan(await x('api'));
    expect(await x('api')).toBe(await x('docs'));
    expect(await x('fix-api')).toBeLessThan(await x('verify'));

    await node('api').click();
    const panel = page.locator('#panel');
    await panel.locator('details.iter').first().waitFor({ timeout: 10_000 });
    const text = await panel.innerText();
    for (const expected of ['Iteration 1', 'OBSERVE', 'REASON', 'PLAN', 'ACT', 'VALIDATE', 'write_file', 'Verdict: valid', REASON.conclusion, XSS_TITLE]) {
      expect(text, expected).toContain(expected);
    }
    expect(await panel.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__xss)).toBeUndefined();

    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('lists the build on the home page and the agents on /agents', async () => {
    await page.goto(`${orchestrator.httpUrl}/`);
    await page.locator('#builds tr[data-build] .badge.st-succeeded').first().waitFor({ timeout: 10_000 });
    expect(await page.locator('#builds tr[data-build]').first().innerText()).toContain('5/5');
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-builds.png') });
    await page.goto(`${orchestrator.httpUrl}/agents`);
    await page.locator('#agents tr[data-agent]').nth(2).waitFor({ timeout: 10_000 });
    const roles = await page.locator('#agents tr[data-agent] td:nth-child(2)').allInnerTexts();
    expect(roles.sort()).toEqual(['backend', 'master', 'testing']);
    for (const state of await page.locator('#agents tr[data-agent] td:nth-child(3)').allInnerTexts()) expect(AGENT_STATES).toContain(state.trim());
    for (const proc of await page.locator('#agents tr[data-agent] td:nth-child(7)').allInnerTexts()) expect(proc).toMatch(/ · up \S+/);
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-agents.png') });
    expect(problems).toEqual([]);
  });
});

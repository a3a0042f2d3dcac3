/**
 * Debian's Chromium, headless, driven by puppeteer-core: for the dashboard's test and benchmark.
 */
import { existsSync } from 'node:fs';

import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Starts Chromium with its profile in `profile` (a fresh temporary directory). */
export async function launchChromium(profile: string): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/deps.sh (it installs Debian's chromium)`);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    timeout: 30_000,
    protocolTimeout: 30_000,
    // Root in a container: no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
  });
}

/** Closes the browser, killing it if it does not go within 5 s. */
export async function closeChromium(browser: Browser): Promise<void> {
  const proc = browser.process();
  const timer = setTimeout(() => proc?.kill('SIGKILL'), 5000);
  await browser.close().catch(() => proc?.kill('SIGKILL'));
  clearTimeout(timer);
}

/**
 * Signs the page in at `${base}/dashboard` with `key` through its form and waits for the first
 * render; each wait is bounded by `stepMs`.
 */
export async function signIn(page: Page, base: string, key: string, stepMs: number): Promise<void> {
  await page.goto(`${base}/dashboard`, { waitUntil: 'domcontentloaded', timeout: stepMs });
  await page.waitForSelector('#login:not([hidden])', { timeout: stepMs });
  await page.type('#key', key);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('body[data-rendered="1"]', { timeout: stepMs });
}

/** Evaluates `expression` in the page (passed as a string: the tests compile without the DOM library). */
export async function inPage(page: Page, expression: string): Promise<unknown> {
  return page.evaluate<[], () => unknown>(expression);
}

/** The attribute `attr` of every element matching `selector`, in document order. */
export async function attrs(page: Page, selector: string, attr: string): Promise<(string | null)[]> {
  return (await inPage(page, `[...document.querySelectorAll(${JSON.stringify(selector)})].map((e) => e.getAttribute(${JSON.stringify(attr)}))`)) as (string | null)[];
}

/**
 * Debian's Chromium, headless, driven by puppeteer-core: for the dashboard's test and benchmark.
 */
import { existsSync } from 'node:fs';

import puppeteer, { type Browser } from 'puppeteer-core';

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

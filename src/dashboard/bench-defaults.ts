/** `ephemera bench dashboard`'s sizes, apart from bench.ts so that the CLI's usage text does not load Chromium's driver. */
export const DASHBOARD_BENCH_DEFAULTS = { metricsContainers: 1000, scrapes: 30, pageContainers: 100, pageActivations: 1000, renders: 5 } as const;

// Helpers for the browser tests, by concern: the app's processes (server.mjs), Chromium
// (browser.mjs), live-logout probes (live.mjs) and single sign-on (sso.mjs). Nothing here knows
// about a test framework.

export * from './server.mjs';
export * from './browser.mjs';
export * from './live.mjs';
export * from './sso.mjs';
export * from './ssf.mjs';

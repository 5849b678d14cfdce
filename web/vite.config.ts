// The admin UI: React, built into static files (web/dist) that the service serves at `/`.
// Everything is bundled: no CDN, no web fonts, nothing fetched at run time.

import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // `npx vite --config web/vite.config.ts` for development, with the service on :8080
    proxy: { '/api': 'http://127.0.0.1:8080', '/scim': 'http://127.0.0.1:8080' },
  },
});

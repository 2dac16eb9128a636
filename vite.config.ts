/**
 * Builds the rule playground page (web/playground) into dist/web/playground, where the service and
 * `kube-event-rules playground` serve it from: every script and style is in the package, nothing is
 * loaded from elsewhere at run time.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'web/playground',
  base: './',
  logLevel: 'warn',
  build: {
    outDir: '../../dist/web/playground',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
});

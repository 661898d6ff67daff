/** Monitoring with Prometheus scraping every 60 s, Prometheus's default: test/helpers/scrape-interval.ts. */
import { describeScrapeInterval } from '../helpers/scrape-interval.js';

describeScrapeInterval(60);

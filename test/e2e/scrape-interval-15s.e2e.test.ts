/** Monitoring with Prometheus scraping every 15 s, as many teams run it: test/helpers/scrape-interval.ts. */
import { describeScrapeInterval } from '../helpers/scrape-interval.js';

describeScrapeInterval(15);

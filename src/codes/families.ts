// Imports every code family so that each registers itself in family-table.ts.
import './replication.js';
import './addition.js';
import './linear.js';
import './concat.js';
import './learned.js';
import './berrut.js';
import './lagrange.js';
import './letcc.js';
import './bspline.js';

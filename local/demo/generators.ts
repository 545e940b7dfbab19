/**
 * Sample data for the demo platform, shaped like the seeds: battery metrics as seed 003's BESS
 * feed (`battery:N:data`), vehicle positions as seed 002's `vehicleId` items. Pure functions of
 * the previous value and a random source, so tests can pin them.
 */

export interface BatteryMetrics {
  timestamp: number;
  voltage: number;
  current: number;
  temperature: number;
  state_of_charge: number;
  state_of_health: number;
}

export interface VehiclePosition {
  timestamp: number;
  vehicleId: string;
  lat: number;
  lon: number;
  speed: number;
}

type Rand = () => number;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const round = (v: number, digits: number) => Number(v.toFixed(digits));

export function initialBattery(index: number, rand: Rand = Math.random): Omit<BatteryMetrics, 'timestamp'> {
  return {
    voltage: round(130 + 10 * rand(), 1),
    current: round(100 + 15 * rand(), 1),
    temperature: round(25 + 5 * rand() + index, 1),
    state_of_charge: round(40 + 50 * rand(), 1),
    state_of_health: round(85 + 10 * rand(), 1),
  };
}

/** Next reading: small random walk, state of charge drifting down while discharging. */
export function nextBattery(prev: Omit<BatteryMetrics, 'timestamp'>, now: number, rand: Rand = Math.random): BatteryMetrics {
  return {
    timestamp: now,
    voltage: round(clamp(prev.voltage + (rand() - 0.5) * 2, 110, 150), 1),
    current: round(clamp(prev.current + (rand() - 0.5) * 4, 0, 150), 1),
    temperature: round(clamp(prev.temperature + (rand() - 0.5) * 0.6, -10, 60), 1),
    state_of_charge: round(prev.state_of_charge <= 5 ? 95 : prev.state_of_charge - rand() * 0.3, 1),
    state_of_health: prev.state_of_health,
  };
}

/** Vehicles start around Madrid, each with its own heading. */
export function initialVehicle(index: number, rand: Rand = Math.random): VehiclePosition & { heading: number } {
  return {
    timestamp: 0,
    vehicleId: String(index),
    lat: round(40.4168 + (rand() - 0.5) * 0.05, 6),
    lon: round(-3.7038 + (rand() - 0.5) * 0.05, 6),
    speed: round(30 + 30 * rand(), 1),
    heading: rand() * 2 * Math.PI,
  };
}

/** Moves the vehicle for `dtMs` at its speed (km/h) along a slowly turning heading. */
export function nextVehicle(
  prev: VehiclePosition & { heading: number },
  now: number,
  dtMs: number,
  rand: Rand = Math.random,
): VehiclePosition & { heading: number } {
  const heading = prev.heading + (rand() - 0.5) * 0.4;
  const speed = round(clamp(prev.speed + (rand() - 0.5) * 6, 0, 120), 1);
  const km = (speed * dtMs) / 3_600_000;
  // ~111 km per degree of latitude; longitude degrees shrink with cos(latitude).
  const lat = prev.lat + (km * Math.cos(heading)) / 111;
  const lon = prev.lon + (km * Math.sin(heading)) / (111 * Math.cos((prev.lat * Math.PI) / 180));
  return { timestamp: now, vehicleId: prev.vehicleId, lat: round(lat, 6), lon: round(lon, 6), speed, heading };
}

/** What goes on the wire for a vehicle (the heading is internal state). */
export function vehicleMessage(v: VehiclePosition & { heading: number }): VehiclePosition {
  return { timestamp: v.timestamp, vehicleId: v.vehicleId, lat: v.lat, lon: v.lon, speed: v.speed };
}

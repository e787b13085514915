"""A room heated by a PID controller, simulated minute by minute for four hours.

    python3 simulate.py sim.toml            prints the mean distance from the target (the metric)
    python3 simulate.py sim.toml overshoot  prints how far the room went above the target (a guard)

The room starts cold, the heater's power is limited, the thermometer reads the
temperature a few minutes late, and a window is opened for a while in the
middle: a controller must warm up fast without overshooting and win back the
heat the window loses. Deterministic: the same settings give the same numbers.
"""

from __future__ import annotations

import sys
import tomllib

TARGET = 21.0  # degrees C
OUTSIDE = 5.0
START = 15.0
LOSS = 0.02  # share of the indoor-outdoor difference lost each minute
WINDOW_LOSS = 0.08  # the same, while the window is open
WINDOW = range(120, 140)  # minutes when the window is open
HEAT = 0.8  # degrees per minute at full power
SENSOR_DELAY = 4  # minutes


def simulate(kp: float, ki: float, kd: float, minutes: int) -> tuple[float, float]:
    room, integral = START, 0.0
    readings = [START] * (SENSOR_DELAY + 1)
    previous_error = TARGET - START
    total_error, highest = 0.0, START
    for minute in range(minutes):
        seen = readings[-SENSOR_DELAY - 1]
        error = TARGET - seen
        derivative = error - previous_error
        previous_error = error
        power = kp * error + ki * integral + kd * derivative
        if 0.0 < power < 1.0:
            integral += error  # no wind-up while the heater is at a limit
        power = min(1.0, max(0.0, power))
        loss = WINDOW_LOSS if minute in WINDOW else LOSS
        room += HEAT * power - loss * (room - OUTSIDE)
        readings.append(room)
        total_error += abs(TARGET - room)
        highest = max(highest, room)
    return total_error / minutes, max(0.0, highest - TARGET)


def main(argv: list[str]) -> None:
    with open(argv[0], "rb") as f:
        config = tomllib.load(f)
    pid = config["controller"]
    mean_error, overshoot = simulate(float(pid["kp"]), float(pid["ki"]), float(pid["kd"]),
                                     int(config.get("simulation", {}).get("minutes", 240)))
    if argv[1:] == ["overshoot"]:
        print(f"overshoot: {overshoot:.4f}")
    else:
        print(f"mean_abs_error: {mean_error:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])

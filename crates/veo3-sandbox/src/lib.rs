//! A faithful, stateful local emulator of kie.ai's Veo 3 API, for tests and demos.

"""OCPP collector (1.6J and 2.0.1), its durable writer, and the fleet simulator."""

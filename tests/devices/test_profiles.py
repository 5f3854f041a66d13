"""Device profiles: from discovered services to capabilities and codecs."""

from __future__ import annotations

import pytest

from paceline.devices import gatt, uuids
from paceline.devices.profiles import (
    BATTERY_SERVICE_SPEC,
    DEFAULT_PROFILES,
    CharacteristicSpec,
    DeviceProfile,
    DiscoveredCharacteristic,
    DiscoveredService,
    ServiceSpec,
    Stream,
    default_registry,
)


def service(uuid: str, *chars: tuple[str, tuple[str, ...]], handle: int = 1) -> DiscoveredService:
    """A discovered service with (uuid, properties) characteristics on consecutive handles."""
    return DiscoveredService(
        uuid,
        handle,
        tuple(
            DiscoveredCharacteristic(char_uuid, handle + 2 * (index + 1), frozenset(props))
            for index, (char_uuid, props) in enumerate(chars)
        ),
    )


HRS = service(
    uuids.HEART_RATE_SERVICE,
    (uuids.HEART_RATE_MEASUREMENT, ("notify",)),
    (uuids.BODY_SENSOR_LOCATION, ("read",)),
    handle=1,
)
BATTERY = service(uuids.BATTERY_SERVICE, (uuids.BATTERY_LEVEL, ("read", "notify")), handle=20)
DIS = service(
    uuids.DEVICE_INFORMATION_SERVICE,
    (uuids.MANUFACTURER_NAME, ("read",)),
    (uuids.FIRMWARE_REVISION, ("read",)),
    handle=30,
)
RSC = service(
    uuids.RUNNING_SPEED_AND_CADENCE_SERVICE,
    (uuids.RSC_MEASUREMENT, ("notify",)),
    (uuids.RSC_FEATURE, ("read",)),
    handle=40,
)
MOTION = service(
    uuids.INFINITIME_MOTION_SERVICE,
    (uuids.INFINITIME_STEP_COUNT, ("read", "notify")),
    (uuids.INFINITIME_MOTION_VALUES, ("read", "notify")),
    handle=50,
)
GENERIC_ACCESS = service(
    "00001800-0000-1000-8000-00805f9b34fb",
    ("00002a00-0000-1000-8000-00805f9b34fb", ("read",)),
    handle=60,
)


def test_heart_rate_strap_gives_hr_rr_and_battery() -> None:
    """A strap with HRS, battery and DIS resolves to hr_strap with the right codecs."""
    resolved = DEFAULT_PROFILES.resolve([GENERIC_ACCESS, HRS, BATTERY, DIS])
    assert resolved is not None
    assert resolved.name == "hr_strap"
    assert resolved.streams == {Stream.HEART_RATE, Stream.RR_INTERVAL, Stream.BATTERY}
    hr = resolved.binding_for(uuids.HEART_RATE_MEASUREMENT)
    assert hr is not None and hr.codec is gatt.HeartRateMeasurement and hr.notify
    assert hr.handle == 3
    assert resolved.binding_for("2a26") is not None  # short UUIDs are normalised
    assert [b.characteristic_uuid for b in resolved.notify_bindings] == [
        uuids.HEART_RATE_MEASUREMENT,
        uuids.BATTERY_LEVEL,
    ]


def test_strap_without_battery_service_cannot_give_battery() -> None:
    """Capabilities follow what the device really has, not what the profile could have."""
    resolved = DEFAULT_PROFILES.resolve([HRS])
    assert resolved is not None
    assert Stream.BATTERY not in resolved.streams
    assert DEFAULT_PROFILES.get("hr_strap") is not None
    assert Stream.BATTERY in resolved.profile.streams


def test_footpod_gives_steps() -> None:
    """RSC alone is a footpod: steps (from cadence) and battery."""
    resolved = DEFAULT_PROFILES.resolve([RSC, BATTERY])
    assert resolved is not None
    assert resolved.name == "rsc_sensor"
    assert resolved.streams == {Stream.STEPS, Stream.BATTERY}
    rsc = resolved.binding_for(uuids.RSC_MEASUREMENT)
    assert rsc is not None and rsc.codec is gatt.RSCMeasurement


def test_band_with_heart_rate_and_rsc_gets_everything() -> None:
    """HRS + RSC: the RSC profile (which also reads HRS) wins over the bare strap profile."""
    resolved = DEFAULT_PROFILES.resolve([HRS, RSC, BATTERY])
    assert resolved is not None
    assert resolved.name == "rsc_sensor"
    assert resolved.streams == {Stream.HEART_RATE, Stream.RR_INTERVAL, Stream.STEPS, Stream.BATTERY}


def test_pinetime_gives_heart_rate_and_steps_but_no_rr() -> None:
    """HRS + InfiniTime motion is a PineTime; InfiniTime never sends RR intervals."""
    resolved = DEFAULT_PROFILES.resolve([DIS, BATTERY, HRS, MOTION])
    assert resolved is not None
    assert resolved.name == "pinetime"
    assert resolved.streams == {Stream.HEART_RATE, Stream.STEPS, Stream.BATTERY}
    steps = resolved.binding_for(uuids.INFINITIME_STEP_COUNT)
    assert steps is not None and steps.codec is gatt.MotionStepCount
    # Raw motion values notify but feed no stream: bound (readable) yet never subscribed.
    assert resolved.binding_for(uuids.INFINITIME_MOTION_VALUES) is not None
    assert uuids.INFINITIME_MOTION_VALUES not in {
        b.characteristic_uuid for b in resolved.notify_bindings
    }


def test_device_without_known_services_matches_no_profile() -> None:
    """Battery and DIS alone are not a wearable we can read."""
    assert DEFAULT_PROFILES.resolve([GENERIC_ACCESS, BATTERY, DIS]) is None


def test_required_characteristic_missing_means_no_match() -> None:
    """A heart-rate service without its measurement characteristic does not make a strap."""
    broken = service(uuids.HEART_RATE_SERVICE, (uuids.BODY_SENSOR_LOCATION, ("read",)))
    assert DEFAULT_PROFILES.resolve([broken]) is None


def test_adding_a_device_type_is_registering_a_profile() -> None:
    """A new profile extends what resolves, with no change anywhere else."""
    registry = default_registry()
    thermometer = ServiceSpec(
        uuids.uuid16(0x1809),
        (CharacteristicSpec(uuids.uuid16(0x2A1C), gatt.BatteryLevel, frozenset({Stream.BATTERY})),),
    )
    registry.register(
        DeviceProfile(
            "thermo", "test thermometer", required=(thermometer,), optional=(BATTERY_SERVICE_SPEC,)
        )
    )
    device = service(uuids.uuid16(0x1809), (uuids.uuid16(0x2A1C), ("notify",)))
    resolved = registry.resolve([device, BATTERY])
    assert resolved is not None and resolved.name == "thermo"
    assert DEFAULT_PROFILES.resolve([device]) is None
    with pytest.raises(ValueError, match="already registered"):
        registry.register(DEFAULT_PROFILES.get("pinetime"))  # type: ignore[arg-type]


def test_profile_without_required_service_is_refused() -> None:
    """A profile must say which service identifies the device."""
    with pytest.raises(ValueError, match="requires no service"):
        default_registry().register(DeviceProfile("empty", "nothing", required=()))


@pytest.mark.parametrize(
    ("service_uuids", "name", "expected"),
    [
        (["180d"], "Polar H10 1234", "hr_strap"),
        ([uuids.HEART_RATE_SERVICE, uuids.RUNNING_SPEED_AND_CADENCE_SERVICE], "Band", "rsc_sensor"),
        (["1814"], None, "rsc_sensor"),
        ([], "InfiniTime", "pinetime"),
        (["180d"], "InfiniTime", "pinetime"),
        (["180f"], "Thermometer", None),
        ([], None, None),
    ],
)
def test_advertisement_guess(
    service_uuids: list[str], name: str | None, expected: str | None
) -> None:
    """Scan results are labelled from advertised services, or the name where that is all there is."""
    guessed = DEFAULT_PROFILES.guess(service_uuids, name)
    assert (guessed.name if guessed else None) == expected

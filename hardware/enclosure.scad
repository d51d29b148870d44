// StrideClip enclosure: a base that holds the IMU flat against the sacrum, a lid, and a belt
// clip on the back. Parametric: change the part sizes (from hardware/bom.csv; a test checks
// they agree) and the case follows. Render: openscad -o base.stl -D 'part="base"' enclosure.scad
// (part = "base", "lid" or "both"). Print in PETG, 0.2 mm layers, base upside down, no supports.

part = "both";

// --- parts (mm, from hardware/bom.csv: L x W x H) ---
board = [21, 17.8, 3.5];      // U1 XIAO ESP32S3
imu = [25.4, 17.8, 4.6];      // U2 IMU breakout, components included
battery = [35, 30, 5];        // BT1 503035 LiPo
motor_d = 10;                 // M1 coin ERM diameter
motor_h = 2.7;
switch = [8.6, 3.6, 3.5];     // SW1 slide switch body

// --- case ---
wall = 1.6;
floor_t = 1.2;                // thin under the IMU: it should feel the pelvis, not the case
clear = 0.5;                  // around every part
gap = 1.0;                    // between layers
usb_c = [9.5, 3.8];           // the cable's plug opening
clip_w = 16;                  // the belt clip tongue
clip_len = 34;
clip_t = 2.2;
clip_gap = 3.2;               // waistband thickness it grips
screw_d = 2.2;                // M2 lid screws into the posts
post_d = 5;
post_x = wall + post_d / 2 - 1;  // post centres: sunk 1 mm into the walls, so they join them
e = 0.05;                     // joined solids overlap a little, so the union is one manifold

// Layers from the floor: IMU and motor side by side; the battery; the board and the switch.
inner_l = max(imu[0] + motor_d + gap, battery[0], board[0] + switch[0] + gap) + 2 * clear + 2 * post_d;
inner_w = max(imu[1], battery[1], board[1]) + 2 * clear;
inner_h = max(imu[2], motor_h) + battery[2] + board[2] + 2 * gap;
outer = [inner_l + 2 * wall, inner_w + 2 * wall, inner_h + floor_t + wall];
echo(str("outer size (mm): ", outer));

module rounded_box(size, r = 2) {
    hull() for (x = [r, size[0] - r], y = [r, size[1] - r])
        translate([x, y, 0]) cylinder(r = r, h = size[2], $fn = 24);
}

module base() {
    difference() {
        rounded_box([outer[0], outer[1], outer[2] - wall]);
        translate([wall, wall, floor_t]) cube([inner_l, inner_w, outer[2]]);
        // USB-C at the board's end, on the top layer
        translate([-1, (outer[1] - usb_c[0]) / 2, floor_t + inner_h - board[2] - usb_c[1] / 2])
            cube([wall + 2, usb_c[0], usb_c[1]]);
        // the switch's slider through the side wall
        translate([wall + post_d + board[0] + gap + clear, -1, floor_t + inner_h - switch[2]])
            cube([switch[0] - 3, wall + 2, switch[2]]);
    }
    // IMU seat: two ribs that stop the board sliding (it is screwed or glued flat to the floor)
    for (y = [wall + clear - 0.6, wall + clear + imu[1]])
        translate([wall + post_d, y, floor_t - e]) cube([imu[0], 0.6, 1.2 + e]);
    // lid screw posts in the corners of the long ends
    for (x = [post_x, outer[0] - post_x], y = [post_x, outer[1] - post_x])
        translate([x, y, floor_t - e]) difference() {
            cylinder(d = post_d, h = inner_h + e, $fn = 24);
            cylinder(d = screw_d * 0.8, h = inner_h + 1, $fn = 16);
        }
    belt_clip();
}

// A tongue on the back of the base: the waistband slides between it and the case.
module belt_clip() {
    translate([(outer[0] - clip_len) / 2, (outer[1] - clip_w) / 2, -clip_gap - clip_t]) {
        cube([clip_len, clip_w, clip_t]);
        translate([clip_len - 4, 0, 0]) cube([4, clip_w, clip_t + clip_gap + e]);  // joined at the top end
        translate([0, 0, clip_t - e]) cube([3, clip_w, 0.8 + e]);  // a lip at the open end holds the band
    }
}

module lid() {
    difference() {
        rounded_box([outer[0], outer[1], wall]);
        for (x = [post_x, outer[0] - post_x], y = [post_x, outer[1] - post_x])
            translate([x, y, -1]) cylinder(d = screw_d, h = wall + 2, $fn = 16);
        // "UP": the IMU's x axis points this way (hardware/mounting.md)
        translate([outer[0] / 2, outer[1] / 2, wall - 0.4]) linear_extrude(1)
            text("UP", size = 5, halign = "center", valign = "center");
    }
}

if (part == "base" || part == "both") base();
if (part == "lid") lid();
if (part == "both") translate([0, outer[1] + 5, 0]) lid();

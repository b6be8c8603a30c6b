DROP TABLE seen_jtis;
